#include "agent/log_observer.h"

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
  auto log = [&](std::string_view name, Result result, Clock::duration took, std::string_view detail) {
    auto level = result == Result::Ok || result == Result::Skipped ? spdlog::level::debug : spdlog::level::warn;
    spdlog::log(level, "{} {} {}: {} after {:.1f} ms{}{}", at.tag(), name, action_name(action), result_name(result),
                ms(took), colon(detail), detail);
  };
  for (const PartOutcome& part : outcome.parts)
    log(fmt::format("{} {}", participant, part.name), part.result, part.took, part.detail);
  if (outcome.parts.empty() || !outcome.ok()) log(participant, outcome.result, outcome.took, outcome.detail);
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
