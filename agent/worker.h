// One background thread that runs blocking jobs (FIFREEZE, syncfs) for the event loop. A job
// runs on the thread; its completion callback runs back on the sd-event loop, woken through an
// eventfd, so the loop keeps serving the device and timers while the job blocks.
#pragma once

#include "agent/status.h"

#include <systemd/sd-event.h>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace hvvss {

class Worker {
 public:
  static Status create(sd_event* loop, std::unique_ptr<Worker>* out);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs `job` on the worker thread, then `done` on the loop. One job at a time: check busy().
  void run(std::function<void()> job, std::function<void()> done);
  bool busy() const { return busy_; }

 private:
  Worker() = default;
  static int on_wakeup(sd_event_source* source, int fd, uint32_t revents, void* userdata);
  void thread_main();

  int eventfd_ = -1;
  sd_event_source* source_ = nullptr;
  bool busy_ = false;  // loop thread only
  std::function<void()> done_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::function<void()> job_;  // guarded by mutex_
  bool quit_ = false;          // guarded by mutex_
  std::thread thread_;
};

}  // namespace hvvss
