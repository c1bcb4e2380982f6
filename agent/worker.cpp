#include "agent/worker.h"

#include <sys/eventfd.h>
#include <unistd.h>
#include <cstdint>
#include <stdexcept>
#include <system_error>

namespace hvvss {

Worker::Worker(sd_event* loop) {
  eventfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  int r = sd_event_add_io(loop, &source_, eventfd_, EPOLLIN, &Worker::on_wakeup, this);
  if (r < 0) throw std::system_error(-r, std::generic_category(), "sd_event_add_io(worker)");
  thread_ = std::thread([this] { thread_main(); });
}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_one();
  // A job stuck in an uninterruptible FIFREEZE cannot be joined; the process is exiting.
  if (busy_)
    thread_.detach();
  else
    thread_.join();
  sd_event_source_disable_unref(source_);
  close(eventfd_);
}

void Worker::run(std::function<void()> job, std::function<void()> done) {
  if (busy_) throw std::logic_error("Worker::run while busy");
  busy_ = true;
  done_ = std::move(done);
  {
    std::lock_guard lock(mutex_);
    job_ = std::move(job);
  }
  wake_.notify_one();
}

void Worker::thread_main() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return quit_ || job_; });
      if (!job_) return;
      job = std::move(job_);
      job_ = nullptr;
    }
    job();
    { std::lock_guard lock(mutex_); }  // publishes the job's writes to on_wakeup
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(eventfd_, &one, sizeof one);
  }
}

int Worker::on_wakeup(sd_event_source*, int fd, uint32_t, void* userdata) {
  auto* self = static_cast<Worker*>(userdata);
  uint64_t count = 0;
  if (read(fd, &count, sizeof count) != sizeof count) return 0;
  { std::lock_guard lock(self->mutex_); }
  self->busy_ = false;
  auto done = std::move(self->done_);
  self->done_ = nullptr;
  if (done) done();
  return 0;
}

}  // namespace hvvss
