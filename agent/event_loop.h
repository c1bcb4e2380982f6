// Small pieces of sd-event that the engine and the daemon share: a one-shot timer on
// CLOCK_MONOTONIC (the clock of std::chrono::steady_clock) whose every sd_event call is checked,
// and post(), which runs a function on the next loop iteration, so that a completion is never
// delivered from inside the call that started it.
#pragma once

#include "agent/participant.h"
#include "agent/status.h"

#include <systemd/sd-event.h>
#include <functional>
#include <optional>

namespace hvvss {

class Timer {
 public:
  Timer(sd_event* loop, std::function<void()> fire) : loop_(loop), fire_(std::move(fire)) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fires once at `at` (at once if it has passed); replaces an earlier arming.
  Status arm(Clock::time_point at);
  void disarm();
  // When it will fire; nullopt when disarmed.
  std::optional<Clock::time_point> due() const { return due_; }

 private:
  static int on_time(sd_event_source* source, uint64_t usec, void* userdata);

  sd_event* loop_;
  std::function<void()> fire_;
  sd_event_source* source_ = nullptr;
  std::optional<Clock::time_point> due_;
};

// Runs `fn` on the loop's next iteration.
Status post(sd_event* loop, std::function<void()> fn);

uint64_t to_usec(Clock::time_point t);

}  // namespace hvvss
