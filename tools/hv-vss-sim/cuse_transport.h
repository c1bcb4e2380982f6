// The simulated device as a real character device, /dev/<name>, through CUSE (libfuse3's
// character devices in user space; needs root and /dev/cuse, i.e. `modprobe cuse`). It behaves as
// the kernel's misc device does (PROTOCOL.md §2): open() of a second daemon fails with EBUSY, read()
// blocks until a message is queued (O_NONBLOCK is ignored, as the kernel ignores it; a signal ends
// it with EINTR), poll() reports POLLIN while a message is queued and POLLERR|POLLHUP once the
// device is destroyed, a rejected write() fails with the Driver's errno, and the release of the
// last reference reaches the Driver. Single-threaded: the session's descriptor is served from the
// simulator's own poll loop.
#pragma once

#include "tools/hv-vss-sim/timeline.h"
#include "tools/hv-vss-sim/transport.h"

#define FUSE_USE_VERSION 35
#include <fuse3/cuse_lowlevel.h>

#include <cstdint>
#include <deque>
#include <vector>

namespace hvvss::sim {

class CuseTransport final : public Transport {
 public:
  // `name` is the device's name under /dev, e.g. "vmbus/hv_vss".
  CuseTransport(std::string name, Timeline& timeline);
  ~CuseTransport() override;
  CuseTransport(const CuseTransport&) = delete;
  CuseTransport& operator=(const CuseTransport&) = delete;

  std::string start(Driver& driver) override;
  void add_pollfds(std::vector<pollfd>& fds) override;
  void dispatch(std::span<const pollfd> fds) override;
  bool deliver(std::span<const std::byte> message, OnRead on_read) override;
  void destroy() override;
  std::string failure() const override { return failure_; }

 private:
  struct Reader {
    fuse_req_t req;
    size_t size;  // the reader's buffer
  };
  static CuseTransport& of(fuse_req_t req) { return *static_cast<CuseTransport*>(fuse_req_userdata(req)); }
  static void op_init_done(void* self);
  static void op_open(fuse_req_t req, fuse_file_info* fi);
  static void op_read(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi);
  static void op_write(fuse_req_t req, const char* buf, size_t size, off_t off, fuse_file_info* fi);
  static void op_release(fuse_req_t req, fuse_file_info* fi);
  static void op_poll(fuse_req_t req, fuse_file_info* fi, fuse_pollhandle* ph);
  static void op_interrupt(fuse_req_t req, void* self);

  // Serves one request from the kernel; false (and failure_ set) when the channel is lost.
  bool serve_one();
  // Answers waiting reads: the queued message to the first that can take it, EBADF to all once
  // destroyed, EINTR to the interrupted ones.
  void answer_readers();
  // Tells the kernel that poll()'s answer changed.
  void notify_poll();
  bool is_current(const fuse_file_info* fi) const { return open_fh_ != 0 && fi->fh == open_fh_; }
  void fail(std::string what);
  // Reports a reply the kernel did not take, unless the request had merely been interrupted.
  void check_reply(int r);

  std::string name_;
  Timeline& timeline_;
  Driver* driver_ = nullptr;
  fuse_session* session_ = nullptr;
  fuse_buf buffer_{};
  bool initialised_ = false;
  std::string failure_;
  uint64_t last_fh_ = 0;
  uint64_t open_fh_ = 0;  // the open file description of the daemon; 0: nobody has the device open
  bool destroyed_ = false;
  std::vector<std::byte> message_;  // the one queued message
  bool queued_ = false;
  OnRead on_read_;
  std::deque<Reader> readers_;
  std::vector<fuse_req_t> interrupted_;
  fuse_pollhandle* poll_handle_ = nullptr;
};

}  // namespace hvvss::sim
