#include "agent/event_loop.h"

#include <spdlog/spdlog.h>
#include <memory>

namespace hvvss {

uint64_t to_usec(Clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  return us < 0 ? 0 : static_cast<uint64_t>(us);
}

Timer::~Timer() { sd_event_source_disable_unref(source_); }

Status Timer::arm(Clock::time_point at) {
  constexpr uint64_t kAccuracyUsec = 1000;
  int r = source_
              ? sd_event_source_set_time(source_, to_usec(at))
              : sd_event_add_time(loop_, &source_, CLOCK_MONOTONIC, to_usec(at), kAccuracyUsec, &Timer::on_time, this);
  if (r >= 0) r = sd_event_source_set_enabled(source_, SD_EVENT_ONESHOT);
  if (r < 0) {
    due_.reset();
    return Status::from_errno(-r, "cannot arm a timer");
  }
  due_ = at;
  return {};
}

void Timer::disarm() {
  due_.reset();
  if (!source_) return;
  if (int r = sd_event_source_set_enabled(source_, SD_EVENT_OFF); r < 0)
    spdlog::error("cannot disarm a timer: {}", std::strerror(-r));
}

int Timer::on_time(sd_event_source*, uint64_t, void* userdata) {
  auto* self = static_cast<Timer*>(userdata);
  self->due_.reset();
  self->fire_();
  return 0;
}

namespace {
struct Posted {
  std::function<void()> fn;
  sd_event_source* source = nullptr;
};
void destroy_posted(void* userdata) { delete static_cast<Posted*>(userdata); }
int run_posted(sd_event_source* source, void* userdata) {
  auto fn = std::move(static_cast<Posted*>(userdata)->fn);
  // Ending the float drops the loop's reference, the last one: the source is freed after this
  // dispatch and, through destroy_posted, `userdata` with it (checked under ASan).
  if (int r = sd_event_source_set_floating(source, 0); r < 0)
    spdlog::error("cannot release a finished event source: {}", std::strerror(-r));
  fn();
  return 0;
}
}  // namespace

Status post(sd_event* loop, std::function<void()> fn) {
  auto posted = std::make_unique<Posted>(Posted{std::move(fn), nullptr});
  int r = sd_event_add_defer(loop, &posted->source, &run_posted, posted.get());
  if (r < 0) return Status::from_errno(-r, "cannot schedule work on the event loop");
  r = sd_event_source_set_destroy_callback(posted->source, &destroy_posted);
  // Floating: the loop owns the source, so one that never runs is freed with the loop (a source
  // the caller owned would keep the loop alive).
  if (r >= 0) r = sd_event_source_set_floating(posted->source, 1);
  if (r < 0) {
    sd_event_source_set_destroy_callback(posted->source, nullptr);
    sd_event_source_disable_unref(posted->source);
    return Status::from_errno(-r, "cannot schedule work on the event loop");
  }
  sd_event_source_unref(posted->source);  // set_floating took a reference of the loop's own
  (void)posted.release();                 // owned by the source from here on: destroy_posted deletes it
  return {};
}

}  // namespace hvvss
