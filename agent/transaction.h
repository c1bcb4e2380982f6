// The snapshot transaction state machine: idle → checking → freezing → frozen → thawing.
// Each host request runs its phase on the worker thread under a deadline taken from the reply
// budget; if the phase overruns, the host is answered HV_E_FAIL at the deadline and whatever
// the phase froze is rolled back as soon as it returns. A freeze that no THAW follows is undone
// after the auto-thaw delay. The loop thread owns all state; plugins only ever run on the worker.
#pragma once

#include "agent/log.h"
#include "agent/plugin.h"
#include "agent/protocol.h"
#include "agent/worker.h"

#include <systemd/sd-event.h>
#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace hvvss {

enum class State { Idle, Checking, Freezing, Frozen, Thawing };
std::string_view state_name(State state);

struct EngineSettings {
  std::chrono::milliseconds reply_budget{15000};
  std::chrono::milliseconds auto_thaw{60000};
};

class TransactionEngine {
 public:
  using ReplyFn = std::function<void(uint8_t op, HvStatus status)>;

  // `plugins` in freeze order: applications first, filesystems last.
  TransactionEngine(sd_event* loop, std::vector<Plugin*> plugins, EngineSettings settings);
  ~TransactionEngine();
  TransactionEngine(const TransactionEngine&) = delete;
  TransactionEngine& operator=(const TransactionEngine&) = delete;

  // A request from the host. `reply` is called exactly once, inside the reply budget.
  void handle(uint8_t op, ReplyFn reply);
  // The channel to the host is gone: no reply is owed any more; thaw whatever is frozen.
  void abandon(std::string_view why);
  // Thaw whatever is frozen, then call `done` (used at shutdown).
  void stop(std::function<void()> done);

  State state() const { return state_; }
  bool frozen() const { return frozen_count_ > 0; }

 private:
  struct Pending {
    uint64_t seq;
    uint8_t op;
    ReplyFn reply;
    Clock::time_point received;
  };
  // Result of a phase, computed on the worker, consumed on the loop.
  struct PhaseResult {
    bool ok = true;
    size_t frozen_count = 0;
    std::string detail;
  };

  void start_awaiting();
  void run_phase(uint8_t op, uint64_t seq, Deadline deadline);
  void start_thaw(std::string_view why);
  void answer(HvStatus status, std::string_view detail);
  void after_phase(uint8_t op, uint64_t seq, const PhaseResult& result);
  void maybe_finish_stop();
  void request_thaw(std::string why);
  void arm(sd_event_source*& timer, Clock::time_point at, sd_event_time_handler_t handler);
  static int on_deadline(sd_event_source*, uint64_t, void* userdata);
  static int on_auto_thaw(sd_event_source*, uint64_t, void* userdata);
  TxnTag tag() const;

  PhaseResult run_check(Deadline deadline);
  PhaseResult run_freeze(Deadline deadline);
  PhaseResult run_thaw(Deadline deadline);
  Deadline phase_deadline(Clock::time_point received) const;
  Clock::time_point reply_by(Clock::time_point received) const;
  Clock::duration margin() const;

  sd_event* loop_;
  std::vector<Plugin*> plugins_;
  EngineSettings settings_;
  Worker worker_;

  State state_ = State::Idle;
  uint64_t txn_ = 0;
  bool txn_open_ = false;
  uint8_t op_ = 0;  // the host op the current log lines are about
  uint64_t next_seq_ = 1;
  size_t frozen_count_ = 0;           // plugins frozen, as the loop knows it
  std::optional<Pending> awaiting_;   // the request owed a reply (the host sends one at a time)
  uint64_t running_seq_ = 0;          // request whose phase the worker runs; 0 = internal phase
  std::function<void()> on_stopped_;  // set by stop()
  bool stopping_ = false;
  std::string thaw_due_;  // why a thaw was requested while the worker was busy ("" = none)

  sd_event_source* deadline_timer_ = nullptr;
  sd_event_source* auto_thaw_timer_ = nullptr;
};

}  // namespace hvvss
