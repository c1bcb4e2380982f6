// Turns the engine's events into log lines, each tagged with the transaction, the host operation
// and the state ([txn=N op=X phase=Y]), which the journald sink turns into fields. While
// filesystems are frozen it writes a handful of lines at most: a participant that did its job is
// a debug line; the reply and anything that went wrong are the lines an admin reads.
#pragma once

#include "agent/transaction.h"

namespace hvvss {

class LogObserver final : public EngineObserver {
 public:
  void request_received(const EventContext& at) override;
  void participant_finished(const EventContext& at, std::string_view participant, Action action,
                            const Outcome& outcome) override;
  void request_answered(const EventContext& at, HvStatus status, std::string_view detail, Clock::duration took,
                        bool delivered) override;
  void transaction_finished(const EventContext& at, HvStatus status, Clock::duration took) override;
};

}  // namespace hvvss
