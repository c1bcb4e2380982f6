#include "agent/test_snapshot.h"

#include <spdlog/spdlog.h>

namespace hvvss {

Status TestSnapshot::start(Clock::duration hold, Report report) {
  if (running()) return Status::refusal(Status::Code::Busy, "a test snapshot is already running");
  if (engine_.host_active() || engine_.frozen() || engine_.state() != State::Idle)
    return Status::refusal(Status::Code::Busy, "a host transaction is under way");
  report_ = std::move(report);
  hold_ = hold;
  txn_ = 0;
  steps_.clear();
  send(Op::HotBackup);
  return {};
}

void TestSnapshot::send(Op op) {
  if (!running()) return;
  received_ = false;
  engine_.handle(
      static_cast<uint8_t>(op),
      [this, op](uint8_t, HvStatus status) {
        // Never re-enter the engine from inside its own answer: go on at the next iteration.
        if (Status s = post(loop_, [this, op, status] { on_reply(op, status); }); !s) {
          spdlog::error("test snapshot: {}", s.message());
          on_reply(op, HvStatus::Fail);
        }
        return true;
      },
      Origin::Local);
  // Refused before it began (the agent is stopping): there is nothing to wait for.
  if (!received_) finish(HvStatus::Fail);
}

void TestSnapshot::on_reply(Op op, HvStatus status) {
  if (!running() || status != HvStatus::Ok) return;  // a failure: the transaction's end reports it
  switch (op) {
    case Op::HotBackup: send(Op::Freeze); return;
    case Op::Freeze:
      if (Status s = hold_timer_.arm(Clock::now() + hold_); !s) {
        spdlog::error("test snapshot: {}: thawing at once", s.message());
        send(Op::Thaw);
      }
      return;
    default: return;
  }
}

void TestSnapshot::request_received(const EventContext& at) {
  if (!running() || at.origin != Origin::Local) return;
  received_ = true;
  txn_ = at.txn;
}

void TestSnapshot::participant_finished(const EventContext& at, std::string_view participant, Action action,
                                        const Outcome& outcome) {
  if (running() && at.txn == txn_ && at.origin == Origin::Local) append_steps(&steps_, participant, action, outcome);
}

void TestSnapshot::transaction_finished(const EventContext& at, HvStatus status, Clock::duration) {
  if (running() && at.txn == txn_ && at.origin == Origin::Local) finish(status);
}

void TestSnapshot::finish(HvStatus result) {
  hold_timer_.disarm();
  auto report = std::exchange(report_, nullptr);
  report(result, std::exchange(steps_, {}));
}

}  // namespace hvvss
