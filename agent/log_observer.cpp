#include "agent/log_observer.h"

#include "agent/steps.h"

namespace hvvss {

namespace {
double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
std::string_view colon(std::string_view detail) { return detail.empty() ? "" : ": "; }
}  // namespace

void LogObserver::request_received(const EventContext& at) {
  spdlog::info("{} request received{}", at.tag(), at.origin == Origin::Local ? " (test snapshot)" : "");
}

void LogObserver::participant_finished(const EventContext& at, std::string_view participant, Action action,
                                       const Outcome& outcome) {
  std::vector<Step> steps;
  append_steps(&steps, participant, action, outcome);
  // Each application (a writer, a hook unit) is named in the journal, whatever it did; a
  // participant that is one thing is summed up in the reply's line.
  auto fine_level = outcome.parts.empty() ? spdlog::level::debug : spdlog::level::info;
  for (const Step& step : steps) {
    bool fine = step.result == Result::Ok || step.result == Result::Skipped;
    spdlog::log(fine ? fine_level : spdlog::level::warn, "{} {} {}: {} after {:.1f} ms{}{}", at.tag(), step.participant,
                action_name(action), result_name(step.result), ms(step.took), colon(step.detail), step.detail);
  }
}

void LogObserver::request_answered(const EventContext& at, HvStatus status, std::string_view detail,
                                   Clock::duration took, bool delivered) {
  if (!delivered) {
    spdlog::error("{} reply {} not delivered after {:.1f} ms{}{}", at.tag(), status_name(status), ms(took),
                  colon(detail), detail);
    return;
  }
  auto level = status == HvStatus::Ok ? spdlog::level::info : spdlog::level::err;
  spdlog::log(level, "{} replied {} after {:.1f} ms{}{}", at.tag(), status_name(status), ms(took), colon(detail),
              detail);
}

void LogObserver::transaction_finished(const EventContext& at, HvStatus status, Clock::duration took) {
  spdlog::info("{} transaction finished: {} after {:.1f} ms", at.tag(), status_name(status), ms(took));
}

}  // namespace hvvss
