// The interface every snapshot participant implements: filesystems now, D-Bus writers and
// systemd-unit hooks next. A call is *started* on the event loop with a deadline and *completes*
// by calling its Done exactly once, later, on the loop (never from inside the call itself), so
// participants that wait for bus messages and participants that block in syscalls (through
// BlockingParticipant) look the same to the engine. Participants never call each other.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss {

using Clock = std::chrono::steady_clock;

// A point in time by which a call must have completed.
class Deadline {
 public:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  static Deadline after(Clock::duration d) { return Deadline(Clock::now() + d); }
  Clock::time_point at() const { return at_; }
  Clock::duration remaining() const { return std::max(Clock::duration::zero(), at_ - Clock::now()); }
  bool expired() const { return Clock::now() >= at_; }
  // When a participant that waits on others (writers, systemd's jobs) gives up: a tenth of what is
  // left, at most 100 ms, before the deadline, so that its Done still reaches the engine in time.
  Clock::time_point early() const {
    return at_ - std::min<Clock::duration>(std::chrono::milliseconds(100), remaining() / 10);
  }

 private:
  Clock::time_point at_;
};

// How a call ended. `skipped`: the participant had nothing to do; `timeout`: the deadline passed
// before it finished. Whether a failure or a timeout vetoes the snapshot is the policy's business.
enum class Result { Ok, Failed, Skipped, Timeout };
std::string_view result_name(Result result);

// How one member of a participant that speaks for several (a D-Bus writer of the writers
// participant) ended its part of a call.
struct PartOutcome {
  std::string name;
  Result result = Result::Ok;
  std::string detail;
  Clock::duration took{};
};

// What a call achieved; `detail` is a short sentence for logs and D-Bus.
struct Outcome {
  Result result = Result::Ok;
  std::string detail;
  Clock::duration took{};
  // A freeze that failed but could not undo all of its own part (a FITHAW failed): the engine
  // treats the participant as frozen, so that it is thawed, and retried, like any other.
  bool holds = false;
  // Each member's part, reported as a step of its own (empty for a participant that is one thing).
  std::vector<PartOutcome> parts;
  bool ok() const { return result == Result::Ok; }
  // Failed or timed out: what a required participant's policy turns into a veto.
  bool failed() const { return result == Result::Failed || result == Result::Timeout; }
  static Outcome success(std::string detail = {}) { return {Result::Ok, std::move(detail), {}, false, {}}; }
  static Outcome failure(std::string detail) { return {Result::Failed, std::move(detail), {}, false, {}}; }
};

// The calls a participant takes part in a snapshot with.
enum class Action { Check, Freeze, Thaw };
std::string_view action_name(Action action);

// A required participant's failure vetoes the snapshot; an optional one's is reported and skipped.
enum class Policy { Required, Optional };
// Applications quiesce before filesystems freeze, and resume after they thaw.
enum class Layer { Application, Filesystem };

// The transaction a call belongs to (for logs and for participants that talk to others).
struct Txn {
  uint64_t id = 0;
};

using Done = std::function<void(Outcome)>;

class Participant {
 public:
  virtual ~Participant() = default;
  virtual std::string_view name() const = 0;
  virtual Policy policy() const = 0;
  virtual Layer layer() const = 0;
  // Can this participant take part in a snapshot right now?
  virtual void check(Txn txn, Deadline deadline, Done done) = 0;
  // Quiesce. On failure the participant leaves its own part thawed.
  virtual void freeze(Txn txn, Deadline deadline, Done done) = 0;
  // Resume. Idempotent (thawing what is not frozen succeeds); always tries everything.
  virtual void thaw(Txn txn, Deadline deadline, Done done) = 0;
  // The engine gave up on a freeze in progress (its deadline passed): undo it as soon as
  // possible. The freeze's Done still comes, and a freeze that completes Ok anyway is thawed by
  // the engine.
  virtual void abort(Txn txn) = 0;
  // At start-up, before the first request: undo what a dead predecessor left frozen.
  virtual void recover(Done done) = 0;
};

}  // namespace hvvss
