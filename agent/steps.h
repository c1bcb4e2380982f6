// One line of a transaction's report: who did what, how it ended and how long it took. A
// participant that speaks for several members (the D-Bus writers) contributes one step per
// member, named "participant/member", so that D-Bus, hv-vssctl and the logs name it alike.
#pragma once

#include "agent/transaction.h"

#include <string>
#include <string_view>
#include <vector>

namespace hvvss {

struct Step {
  std::string participant;
  Action action = Action::Check;
  Result result = Result::Ok;
  Clock::duration took{};
  std::string detail;
};

// "writers/db1"
std::string part_name(std::string_view participant, std::string_view part);
// The steps a participant's finished call adds to a report.
void append_steps(std::vector<Step>* steps, std::string_view participant, Action action, const Outcome& outcome);

}  // namespace hvvss
