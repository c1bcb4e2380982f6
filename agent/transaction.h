// The snapshot transaction engine: idle → checking → freezing → frozen → thawing. It sequences
// asynchronous participants on the loop thread: applications before filesystems on FREEZE,
// filesystems first on THAW. Every participant call gets a deadline carved from the reply
// budget; a required participant that fails or overruns vetoes the phase, an optional one is
// reported and the phase goes on. Exactly what froze is rolled back; THAW is answered as soon as
// the filesystems are thawed, applications resume after the reply, and the next request waits for
// them. A freeze that no THAW follows is undone after the auto-thaw delay. Requests come from the
// host or, for a test snapshot, from the agent itself; a host request ends a test snapshot at
// once. Observers see every step.
#pragma once

#include "agent/event_loop.h"
#include "agent/log.h"
#include "agent/participant.h"
#include "agent/protocol.h"

#include <systemd/sd-event.h>
#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace hvvss {

enum class State { Idle, Checking, Freezing, Frozen, Thawing };
std::string_view state_name(State state);

// Who sent a request: the host, or the agent itself for a test snapshot (hv-vssctl test-snapshot).
enum class Origin { Host, Local };

struct EngineSettings {
  std::chrono::milliseconds reply_budget{15000};
  std::chrono::milliseconds auto_thaw{60000};
};

// Where in the transaction an event happened.
struct EventContext {
  uint64_t txn = 0;
  uint8_t op = 0;  // the host operation being served (or last served)
  State state = State::Idle;
  Origin origin = Origin::Host;
  TxnTag tag() const { return {txn, op_name(op), state_name(state)}; }
};

// Events out of the engine, for logs, sd_notify and D-Bus. Called on the loop thread.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void request_received(const EventContext&) {}
  virtual void state_changed(const EventContext&) {}
  virtual void participant_finished(const EventContext&, std::string_view /*participant*/, Action, const Outcome&) {}
  // `delivered` is false when the channel did not take the reply.
  virtual void request_answered(const EventContext&, HvStatus, std::string_view /*detail*/, Clock::duration /*took*/,
                                bool /*delivered*/) {}
  // A transaction ended (after THAW, a veto, a rollback or an automatic thaw); `status` is
  // HV_S_OK only if every reply was and nothing was thawed behind the host's back.
  virtual void transaction_finished(const EventContext&, HvStatus, Clock::duration /*took*/) {}
};

class TransactionEngine {
 public:
  // Delivers a reply to the host; true when the channel took it.
  using ReplyFn = std::function<bool(uint8_t op, HvStatus status)>;

  // `participants` in registration order; the engine puts applications before filesystems.
  TransactionEngine(sd_event* loop, const std::vector<Participant*>& participants, EngineSettings settings);
  TransactionEngine(const TransactionEngine&) = delete;
  TransactionEngine& operator=(const TransactionEngine&) = delete;

  void add_observer(EngineObserver* observer) { observers_.push_back(observer); }

  // A request. `reply` is called exactly once, inside the reply budget. A host request that
  // arrives during a test snapshot ends it first: its pending request is answered HV_E_FAIL, a
  // freeze under way is aborted, and what it froze is thawed before the host's request starts.
  void handle(uint8_t op, ReplyFn reply, Origin origin = Origin::Host);
  // An emergency thaw (D-Bus Thaw): aborts a freeze under way (or ends a test snapshot), thaws
  // everything frozen, and then calls `done`, on a later loop iteration, with what it did. A host
  // snapshot it tears gets HV_E_FAIL at its THAW.
  void thaw_now(std::string why, std::function<void(std::string)> done);
  // The channel to the host is gone: no reply is owed any more; thaw whatever is frozen.
  void abandon(std::string_view why);
  // At start-up a participant's recovery could not thaw all that its dead predecessor left
  // frozen: it is treated as a thaw that failed, retried with backoff.
  void adopt_frozen(Participant* participant);
  // Thaw whatever is frozen and wait for every participant, then call `done` (at shutdown).
  void stop(std::function<void()> done);

  State state() const { return state_; }
  // The current transaction, or the last one; 0 before the first.
  uint64_t transaction_id() const { return txn_; }
  // A host transaction is under way: a request pending or running, or something frozen for it.
  bool host_active() const;
  bool frozen() const;
  // A thaw failed and is being retried; nothing new is frozen until it succeeds.
  bool thaw_failed() const { return thaw_failed_; }
  // When the automatic thaw will happen; nullopt when none is due.
  std::optional<Clock::time_point> auto_thaw_due() const { return auto_thaw_timer_.due(); }

 private:
  struct Member {
    Participant* participant;
    bool frozen = false;     // its freeze completed Ok and no thaw has run since
    bool in_flight = false;  // a call was started and its Done has not come yet
    uint64_t call = 0;       // id of that call
    Action action = Action::Check;
    Clock::time_point started{};
  };
  struct Pending {
    uint64_t seq;
    uint8_t op;
    ReplyFn reply;
    Clock::time_point received;
    bool started = false;
  };
  struct ThawWaiter {
    std::function<void(std::string)> done;
    std::vector<std::string> thawed;  // participants a thaw completed for since the request
  };
  // One run of participant calls, in order.
  struct Phase {
    Phase(Action action, std::vector<size_t> steps, Deadline deadline, uint64_t seq,
          std::optional<std::string> fail_with)
        : action(action), steps(std::move(steps)), deadline(deadline), seq(seq), fail_with(std::move(fail_with)) {}
    Action action;
    std::vector<size_t> steps;  // member indices
    Deadline deadline;
    uint64_t seq = 0;                      // the request it serves; 0 for an internal thaw
    std::optional<std::string> fail_with;  // a rollback: answers HV_E_FAIL with this
    size_t next = 0;
    size_t current = 0;       // the member whose call runs
    uint64_t call = 0;        // the call the phase waits for; 0 when it timed out
    bool vetoed = false;      // a required participant failed or overran
    std::string detail;       // what the participants said
    std::string veto_detail;  // what vetoed it
  };

  void start_next();
  void end_test(const std::string& why);
  void open_transaction(Origin origin);
  void answer_thaw_waiters();
  void start_request();
  void start_phase(Action action, std::vector<size_t> steps, Deadline deadline, uint64_t seq,
                   std::optional<std::string> fail_with = std::nullopt);
  void start_thaw(uint64_t seq, std::optional<std::string> fail_with);
  void step();
  void on_call_done(size_t index, uint64_t call, Outcome outcome);
  void on_call_timeout();
  // Stops waiting for the running call: it is recorded with `result` and, if a freeze, aborted.
  void give_up_on_call(Result result, std::string detail);
  // A freeze still running is aborted now (stop, lost channel) and rolled back.
  void abort_freeze(std::string_view why);
  void on_reply_deadline();
  void on_late_call(size_t index, const Outcome& outcome);
  bool arm_auto_thaw();
  void maybe_finish_transaction();
  void retry_thaw_later(std::string_view detail);
  void end_transaction();
  void record(size_t index, Outcome outcome);
  void finish_phase();
  void finish_freeze(Phase& phase);
  void finish_thaw(Phase& phase);
  void answer_thaw_once_filesystems_thawed();
  bool owed(const Phase& phase) const { return awaiting_ && awaiting_->seq == phase.seq && phase.seq != 0; }
  void answer(HvStatus status, std::string_view detail);
  void request_thaw(std::string why, bool tears = true);
  void set_state(State state);
  void maybe_finish_stop();
  bool busy() const;
  std::vector<size_t> frozen_members_in_thaw_order() const;
  EventContext context() const { return {txn_, op_, state_, txn_origin_}; }
  Clock::time_point reply_by(Clock::time_point received) const;
  Clock::duration margin() const;
  Deadline call_deadline(const Phase& phase, const Member& m) const;
  template <typename Event>
  void notify(const Event& event) {
    for (EngineObserver* o : observers_) event(*o);
  }

  sd_event* loop_;
  std::vector<Member> members_;  // freeze order: applications, then filesystems
  EngineSettings settings_;
  std::vector<EngineObserver*> observers_;
  Timer reply_timer_, call_timer_, auto_thaw_timer_, thaw_retry_timer_;
  std::chrono::milliseconds thaw_retry_backoff_;

  State state_ = State::Idle;
  uint64_t txn_ = 0;
  bool txn_open_ = false;
  Origin txn_origin_ = Origin::Host;
  HvStatus txn_status_ = HvStatus::Ok;
  Clock::time_point txn_started_{};
  bool awaiting_freeze_ = false;     // the last reply was a HOT_BACKUP's HV_S_OK: FREEZE comes next
  bool freeze_answered_ok_ = false;  // this transaction's FREEZE was answered HV_S_OK
  bool thawed_early_ = false;        // ...and was thawed before the host's THAW came
  bool thaw_failed_ = false;         // a thaw left a participant frozen: retried until it succeeds
  uint8_t op_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t next_call_ = 1;
  std::optional<Pending> awaiting_;  // the request owed a reply (the host sends one at a time)
  std::optional<Phase> phase_;
  std::string thaw_due_;        // why a thaw must run once nothing else does ("" = none)
  bool thaw_due_tears_ = true;  // ...and whether it thaws a host snapshot behind the host's back
  std::vector<ThawWaiter> thaw_waiters_;
  bool stopping_ = false;
  std::function<void()> on_stopped_;
};

}  // namespace hvvss
