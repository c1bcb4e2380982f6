// A test snapshot (D-Bus TestSnapshot, hv-vssctl test-snapshot): the agent plays the host for
// one transaction — HOT_BACKUP, FREEZE, a hold, THAW — through the same engine and participants,
// and reports the result and every participant's steps once the transaction has finished
// (applications resumed too). A host request that arrives meanwhile ends it (the engine aborts
// and thaws it first); the report then says HV_E_FAIL.
#pragma once

#include "agent/event_loop.h"
#include "agent/steps.h"
#include "agent/transaction.h"

#include <functional>
#include <vector>

namespace hvvss {

class TestSnapshot final : public EngineObserver {
 public:
  using Report = std::function<void(HvStatus result, std::vector<Step> steps)>;

  TestSnapshot(sd_event* loop, TransactionEngine& engine)
      : loop_(loop), engine_(engine), hold_timer_(loop, [this] { send(Op::Thaw); }) {}

  bool running() const { return static_cast<bool>(report_); }
  // Starts one; `report` is called once, when its transaction has finished. Code::Busy while a
  // test snapshot or a host transaction runs.
  Status start(Clock::duration hold, Report report);

 private:
  void send(Op op);
  void on_reply(Op op, HvStatus status);
  void finish(HvStatus result);

  void request_received(const EventContext& at) override;
  void participant_finished(const EventContext& at, std::string_view participant, Action action,
                            const Outcome& outcome) override;
  void transaction_finished(const EventContext& at, HvStatus status, Clock::duration took) override;

  sd_event* loop_;
  TransactionEngine& engine_;
  Timer hold_timer_;
  Report report_;
  Clock::duration hold_{};
  uint64_t txn_ = 0;  // its transaction, once the engine opened it
  bool received_ = false;
  std::vector<Step> steps_;
};

}  // namespace hvvss
