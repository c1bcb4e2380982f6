// The channel to the kernel's VSS driver: /dev/vmbus/hv_vss, or a SOCK_SEQPACKET Unix socket at
// that path where the simulator stands in for the kernel. No call blocks (the socket is
// non-blocking; the character device is read only when poll() says a message is queued and never
// makes a write wait, PROTOCOL.md §2), so the loop that owns the channel always serves its timers
// and signals. Registration is REGISTER1, then the 4-byte version reply once it is readable;
// afterwards every read is one request frame and every write one reply frame.
#pragma once

#include "agent/protocol.h"
#include "agent/status.h"
#include "agent/unique_fd.h"

#include <cstddef>
#include <string>
#include <vector>

namespace hvvss {

class Device {
 public:
  // Opens `path`: a socket is connected; a character device is first identified as the VSS
  // misc device (anything else is refused, and nothing is written to it), then opened, where a
  // second daemon gets the kernel's EBUSY. Errors are sentences for the admin.
  Status open(const std::string& path);
  // Sends REGISTER1; the kernel then queues its version reply for read_version().
  Status send_register();
  // Reads the version reply once the channel is readable. `*done` is false after a spurious
  // wake-up (nothing was read); any error means the registration failed.
  Status read_version(bool* done);
  void close() { fd_.reset(); }
  int fd() const { return fd_.get(); }
  bool is_open() const { return static_cast<bool>(fd_); }
  const std::string& path() const { return path_; }
  uint32_t kernel_version() const { return kernel_version_; }

  // Reads one message into `frame` (any size, so that bad frames can be reported); an empty
  // frame is a spurious wake-up. An error means the channel is lost.
  Status read(std::vector<std::byte>* frame);
  // Writes one reply frame at once; an error when the channel did not take it (the kernel
  // rejected it, or a host that does not read left no room for it).
  Status write(const Frame& frame);

 private:
  ssize_t send_frame(const Frame& frame);

  std::string path_;
  UniqueFd fd_;
  bool socket_ = false;
  uint32_t kernel_version_ = 0;
};

}  // namespace hvvss
