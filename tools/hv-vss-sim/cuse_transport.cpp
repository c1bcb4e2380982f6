#include "tools/hv-vss-sim/cuse_transport.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace hvvss::sim {

namespace {
constexpr auto kInitTimeout = std::chrono::seconds(10);
}  // namespace

void CuseTransport::check_reply(int r) {
  // -ENOENT: the request was interrupted or its caller is gone, and needs no answer any more.
  if (r != 0 && r != -ENOENT)
    timeline_.event("error", {{"problem", Timeline::str(fmt::format("a CUSE reply failed: {}", std::strerror(-r)))}});
}

CuseTransport::CuseTransport(std::string name, Timeline& timeline) : name_(std::move(name)), timeline_(timeline) {}

CuseTransport::~CuseTransport() {
  if (poll_handle_) fuse_pollhandle_destroy(poll_handle_);
  // Closing /dev/cuse removes the device and fails whatever the daemon still waits for.
  if (session_) cuse_lowlevel_teardown(session_);
  std::free(buffer_.mem);
}

void CuseTransport::fail(std::string what) {
  if (!failure_.empty()) return;
  failure_ = std::move(what);
  timeline_.event("error", {{"problem", Timeline::str(failure_)}});
}

std::string CuseTransport::start(Driver& driver) {
  driver_ = &driver;
  std::string path = "/dev/" + name_;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0)
    return fmt::format("{} already exists (the kernel's device, or another simulator's)", path);
  std::string devname = "DEVNAME=" + name_;
  const char* dev_info[] = {devname.c_str()};
  cuse_info info{};
  info.dev_info_argc = 1;
  info.dev_info_argv = dev_info;
  cuse_lowlevel_ops ops{};
  ops.init_done = op_init_done;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.release = op_release;
  ops.poll = op_poll;
  // -f: stay in the foreground; -s: one thread (this loop serves the session).
  char arg0[] = "hv-vss-sim", foreground[] = "-f", single[] = "-s";
  char* argv[] = {arg0, foreground, single, nullptr};
  int multithreaded = 0;
  session_ = cuse_lowlevel_setup(3, argv, &info, &ops, &multithreaded, this);
  if (!session_)
    return fmt::format("cannot create {} through /dev/cuse (is the cuse module loaded? modprobe cuse)", path);
  // The simulator keeps its own signal handling: SIGTERM ends it, and the kernel then removes the device.
  fuse_remove_signal_handlers(session_);
  auto until = std::chrono::steady_clock::now() + kInitTimeout;
  while (!initialised_ && failure_.empty() && std::chrono::steady_clock::now() < until) {
    pollfd fd{fuse_session_fd(session_), POLLIN, 0};
    if (poll(&fd, 1, 1000) > 0) serve_one();
  }
  if (!failure_.empty()) return failure_;
  if (!initialised_) return fmt::format("{}: the kernel did not initialise the CUSE device in time", path);
  if (stat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode))
    return fmt::format("{}: the CUSE device was set up, but the node did not appear (is devtmpfs mounted on /dev?)",
                       path);
  timeline_.event("listening", {{"device", Timeline::str(path)}});
  return {};
}

void CuseTransport::add_pollfds(std::vector<pollfd>& fds) {
  fds.push_back({failure_.empty() ? fuse_session_fd(session_) : -1, POLLIN, 0});
}

void CuseTransport::dispatch(std::span<const pollfd> fds) {
  if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) serve_one();
}

bool CuseTransport::serve_one() {
  int n = fuse_session_receive_buf(session_, &buffer_);
  if (n == -EINTR || n == -EAGAIN) return true;
  if (n <= 0 || fuse_session_exited(session_)) {
    fail(fmt::format("the CUSE channel was lost: {}", n < 0 ? std::strerror(-n) : "the session ended"));
    return false;
  }
  fuse_session_process_buf(session_, &buffer_);
  answer_readers();  // interrupts arrive as requests of their own
  return true;
}

void CuseTransport::op_init_done(void* self) { static_cast<CuseTransport*>(self)->initialised_ = true; }

void CuseTransport::op_open(fuse_req_t req, fuse_file_info* fi) {
  CuseTransport& self = of(req);
  if (self.destroyed_) {
    self.check_reply(fuse_reply_err(req, EBADF));
    return;
  }
  if (!self.driver_->on_open()) {
    self.check_reply(fuse_reply_err(req, EBUSY));
    return;
  }
  fi->fh = ++self.last_fh_;
  fi->nonseekable = 1;
  fi->direct_io = 1;
  self.open_fh_ = fi->fh;
  // An open that was interrupted before its reply gives the daemon no descriptor, and no release will come.
  if (fuse_reply_open(req, fi) != 0) {
    self.open_fh_ = 0;
    self.driver_->on_release("the open was interrupted");
  }
}

void CuseTransport::op_read(fuse_req_t req, size_t size, off_t, fuse_file_info* fi) {
  CuseTransport& self = of(req);
  if (!self.is_current(fi) || self.destroyed_) {
    self.check_reply(fuse_reply_err(req, EBADF));
    return;
  }
  self.readers_.push_back({req, size});
  fuse_req_interrupt_func(req, op_interrupt, &self);
  self.answer_readers();
}

void CuseTransport::op_interrupt(fuse_req_t req, void* self) {
  // Answered from the loop, after libfuse has let go of the request.
  static_cast<CuseTransport*>(self)->interrupted_.push_back(req);
}

void CuseTransport::answer_readers() {
  for (fuse_req_t req : std::exchange(interrupted_, {})) {
    auto it = std::find_if(readers_.begin(), readers_.end(), [&](const Reader& r) { return r.req == req; });
    if (it == readers_.end()) continue;  // answered before the interrupt was seen
    readers_.erase(it);
    check_reply(fuse_reply_err(req, EINTR));
  }
  while (!readers_.empty() && (queued_ || destroyed_)) {
    Reader reader = readers_.front();
    readers_.pop_front();
    if (destroyed_) {
      check_reply(fuse_reply_err(reader.req, EBADF));
    } else if (reader.size < message_.size()) {
      check_reply(fuse_reply_err(reader.req, EINVAL));  // the message stays queued for a bigger buffer
    } else if (int r = fuse_reply_buf(reader.req, reinterpret_cast<const char*>(message_.data()), message_.size());
               r == 0) {
      queued_ = false;
      if (auto on_read = std::exchange(on_read_, {})) on_read();
    } else {
      check_reply(r);  // not read: the message stays queued
    }
  }
}

void CuseTransport::op_write(fuse_req_t req, const char* buf, size_t size, off_t, fuse_file_info* fi) {
  CuseTransport& self = of(req);
  if (!self.is_current(fi) || self.destroyed_) {
    self.check_reply(fuse_reply_err(req, EBADF));
    return;
  }
  int err = self.driver_->on_write(std::as_bytes(std::span(buf, size)));
  if (err != 0)
    self.check_reply(fuse_reply_err(req, err));
  else
    self.check_reply(fuse_reply_write(req, size));
}

void CuseTransport::op_release(fuse_req_t req, fuse_file_info* fi) {
  CuseTransport& self = of(req);
  if (self.is_current(fi)) {
    self.open_fh_ = 0;
    self.destroyed_ = false;  // the driver is back: the device can be opened again
    self.queued_ = false;     // the pending outbound message is freed
    self.on_read_ = {};
    if (self.poll_handle_) fuse_pollhandle_destroy(std::exchange(self.poll_handle_, nullptr));
    self.driver_->on_release("daemon closed the device");
  }
  self.check_reply(fuse_reply_err(req, 0));
}

void CuseTransport::op_poll(fuse_req_t req, fuse_file_info* fi, fuse_pollhandle* ph) {
  CuseTransport& self = of(req);
  unsigned revents = 0;
  if (!self.is_current(fi) || self.destroyed_)
    revents = POLLERR | POLLHUP;
  else if (self.queued_)
    revents = POLLIN | POLLRDNORM;
  if (ph) {
    if (self.poll_handle_) fuse_pollhandle_destroy(self.poll_handle_);
    self.poll_handle_ = ph;
  }
  self.check_reply(fuse_reply_poll(req, revents));
}

void CuseTransport::notify_poll() {
  if (!poll_handle_) return;
  // -ENOENT only says that nobody polls any more.
  if (int r = fuse_lowlevel_notify_poll(poll_handle_); r != 0 && r != -ENOENT)
    timeline_.event("error",
                    {{"problem", Timeline::str(fmt::format("poll notification failed: {}", std::strerror(-r)))}});
  fuse_pollhandle_destroy(std::exchange(poll_handle_, nullptr));
}

bool CuseTransport::deliver(std::span<const std::byte> message, OnRead on_read) {
  if (open_fh_ == 0 || destroyed_ || queued_) return false;
  message_.assign(message.begin(), message.end());
  queued_ = true;
  on_read_ = std::move(on_read);
  answer_readers();
  notify_poll();
  return true;
}

void CuseTransport::destroy() {
  if (open_fh_ == 0) return;
  destroyed_ = true;
  queued_ = false;
  on_read_ = {};
  answer_readers();
  notify_poll();
}

}  // namespace hvvss::sim
