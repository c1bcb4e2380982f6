#include "agent/steps.h"

#include <fmt/format.h>

namespace hvvss {

std::string part_name(std::string_view participant, std::string_view part) {
  return fmt::format("{}/{}", participant, part);
}

void append_steps(std::vector<Step>* steps, std::string_view participant, Action action, const Outcome& outcome) {
  for (const PartOutcome& part : outcome.parts)
    steps->push_back({part_name(participant, part.name), action, part.result, part.took, part.detail});
  if (outcome.parts.empty() || !outcome.ok())
    steps->push_back({std::string(participant), action, outcome.result, outcome.took, outcome.detail});
}

}  // namespace hvvss
