// The channel to the kernel's VSS driver: /dev/vmbus/hv_vss, or a SOCK_SEQPACKET Unix socket
// at that path where the simulator stands in for the kernel. Opening registers (REGISTER1 and
// the 4-byte version reply); afterwards every read is one request frame and every write one
// reply frame (PROTOCOL.md §2).
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
  // Opens `path` (the kernel's EBUSY for a second daemon comes here); errors are for the admin.
  Status open(const std::string& path);
  // REGISTER1 and the version reply; after it the kernel forwards host requests.
  Status register_with_kernel();
  // Both of the above.
  Status connect(const std::string& path);
  void close() { fd_.reset(); }
  int fd() const { return fd_.get(); }
  bool is_open() const { return static_cast<bool>(fd_); }
  uint32_t kernel_version() const { return kernel_version_; }

  // Reads one message into `frame` (any size, so that bad frames can be reported); an empty
  // frame is a spurious wake-up. An error means the channel is lost.
  Status read(std::vector<std::byte>* frame);
  // Writes one reply frame; an error when the kernel did not take it.
  Status write(const Frame& frame);

 private:
  Status handshake(const std::string& path);
  ssize_t send_frame(const Frame& frame);

  std::string path_;
  UniqueFd fd_;
  bool socket_ = false;
  uint32_t kernel_version_ = 0;
};

}  // namespace hvvss
