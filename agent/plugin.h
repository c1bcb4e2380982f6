// The interface every snapshot participant implements (filesystems, unit hooks, writers).
// The transaction engine calls check → freeze → thaw on one worker thread, one call at a time,
// each with a deadline derived from the host's reply budget. Plugins never call each other.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace hvvss {

using Clock = std::chrono::steady_clock;

// A point in time by which a call must have returned.
class Deadline {
 public:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  static Deadline after(Clock::duration d) { return Deadline(Clock::now() + d); }
  Clock::time_point at() const { return at_; }
  Clock::duration remaining() const { return std::max(Clock::duration::zero(), at_ - Clock::now()); }
  bool expired() const { return Clock::now() >= at_; }

 private:
  Clock::time_point at_;
};

// What a call achieved; `detail` is a short human sentence for logs and D-Bus.
struct Outcome {
  bool ok = true;
  std::string detail;
  static Outcome success(std::string detail = {}) { return {true, std::move(detail)}; }
  static Outcome failure(std::string detail) { return {false, std::move(detail)}; }
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view name() const = 0;
  // Can this participant take part in a snapshot right now?
  virtual Outcome check(Deadline deadline) = 0;
  // Quiesce. On failure the plugin leaves its own part thawed.
  virtual Outcome freeze(Deadline deadline) = 0;
  // Resume. Idempotent: thawing what is not frozen succeeds; always tries everything.
  virtual Outcome thaw(Deadline deadline) = 0;
};

}  // namespace hvvss
