#include "agent/worker.h"

#include <sys/eventfd.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <system_error>

namespace hvvss {

Status Worker::create(sd_event* loop, std::unique_ptr<Worker>* out) {
  std::unique_ptr<Worker> worker(new Worker());
  worker->eventfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (worker->eventfd_ < 0) return Status::from_errno(errno, "cannot create a worker's eventfd");
  int r = sd_event_add_io(loop, &worker->source_, worker->eventfd_, EPOLLIN, &Worker::on_wakeup, worker.get());
  if (r < 0) return Status::from_errno(-r, "cannot watch a worker's eventfd");
  try {
    worker->thread_ = std::thread([w = worker.get()] { w->thread_main(); });
  } catch (const std::system_error& e) {
    return Status::from_errno(e.code().value(), "cannot start a worker thread");
  }
  *out = std::move(worker);
  return {};
}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_one();
  // A job stuck in an uninterruptible FIFREEZE cannot be joined; the process is exiting.
  if (thread_.joinable()) {
    if (busy_)
      thread_.detach();
    else
      thread_.join();
  }
  sd_event_source_disable_unref(source_);
  if (eventfd_ >= 0) close(eventfd_);
}

void Worker::run(std::function<void()> job, std::function<void()> done) {
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
