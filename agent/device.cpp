#include "agent/device.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace hvvss {

namespace {

constexpr size_t kReadBuffer = 256;  // larger than any frame, so oversized ones are seen whole

Status open_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return Status::errorf(
          "{} does not exist: the Hyper-V 'Backup (volume snapshot)' integration service is not offered "
          "to this VM, or the hv_utils module is not loaded",
          path);
    case EBUSY:
      return Status::errorf(
          "{} is busy: another VSS daemon has it open, most likely hv-vss-daemon.service "
          "(hypervvssd.service on Fedora/RHEL) from hyperv-daemons; stop and disable it",
          path);
    case EAGAIN:
      return Status::errorf("{} does not take the connection: its listen backlog is full, nothing accepts on it", path);
    case EACCES:
    case EPERM: return Status::from_errno(err, fmt::format("{} (hv-vss-agent must run as root)", path));
    default: return Status::from_errno(err, path);
  }
}

Status refused(const std::string& path) {
  return Status::errorf("{} closed the channel during registration: another VSS daemon is probably connected", path);
}

// A Unix socket connect() completes at once or fails (EAGAIN when the listener's backlog is
// full); the socket stays non-blocking for good.
UniqueFd connect_socket(const std::string& path, int& err) {
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (!fd || path.size() >= sizeof addr.sun_path) {
    err = fd ? ENAMETOOLONG : errno;
    return {};
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    err = errno;
    return {};
  }
  return fd;
}

ssize_t retry_eintr(auto call) {
  ssize_t n;
  do n = call();
  while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace

Status Device::open(const std::string& path) {
  close();
  path_ = path;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return open_error(path, errno);
  int err = 0;
  socket_ = S_ISSOCK(st.st_mode);
  if (socket_) {
    fd_ = connect_socket(path, err);
  } else if (S_ISCHR(st.st_mode)) {
    fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    err = errno;
  } else {
    return Status::errorf("{} is neither a character device nor a socket", path);
  }
  if (!fd_) return open_error(path, err);
  return {};
}

Status Device::send_register() {
  Frame hello = encode_request(static_cast<uint8_t>(Op::Register1));
  ssize_t n = retry_eintr([&] { return send_frame(hello); });
  if (n == static_cast<ssize_t>(hello.size())) return {};
  if (n >= 0) return Status::errorf("{}: registration (REGISTER1) failed: short write of {} bytes", path_, n);
  if (errno == EPIPE || errno == ECONNRESET) return refused(path_);
  if (errno == EAGAIN)
    return Status::errorf("{}: registration (REGISTER1) could not be written at once: the other side does not read",
                          path_);
  return Status::from_errno(errno, fmt::format("{}: registration (REGISTER1) failed", path_));
}

Status Device::read_version(bool* done) {
  *done = false;
  uint8_t buffer[kReadBuffer];
  ssize_t n = retry_eintr([&] { return ::read(fd_.get(), buffer, sizeof buffer); });
  if (n < 0 && errno == EAGAIN) return {};  // a spurious wake-up
  if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) return refused(path_);
  if (n < 0) return Status::from_errno(errno, fmt::format("{}: reading the version reply failed", path_));
  if (n != static_cast<ssize_t>(kVersionReplySize))
    return Status::errorf("{}: invalid version negotiation: {}-byte reply, expected {}", path_, n, kVersionReplySize);
  std::memcpy(&kernel_version_, buffer, sizeof kernel_version_);
  *done = true;
  return {};
}

Status Device::read(std::vector<std::byte>* frame) {
  frame->resize(kReadBuffer);
  ssize_t n = retry_eintr([&] { return ::read(fd_.get(), frame->data(), frame->size()); });
  frame->resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (n > 0 || (n < 0 && errno == EAGAIN)) return {};  // EAGAIN: a spurious wake-up (PROTOCOL.md §2.3)
  if (n == 0) return Status::error("the channel was closed by the other side");
  return Status::from_errno(errno, "read failed");
}

// The character device never makes a write wait (PROTOCOL.md §2.5); on the socket,
// MSG_DONTWAIT makes sure of it even if the descriptor lost O_NONBLOCK.
ssize_t Device::send_frame(const Frame& frame) {
  return socket_ ? ::send(fd_.get(), frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT)
                 : ::write(fd_.get(), frame.data(), frame.size());
}

Status Device::write(const Frame& frame) {
  ssize_t n = retry_eintr([&] { return send_frame(frame); });
  if (n == static_cast<ssize_t>(frame.size())) return {};
  if (n < 0 && errno == EINVAL)
    return Status::error(
        "the kernel rejected the reply (EINVAL): it no longer waits for one (timeout or hibernation THAW)");
  if (n < 0 && errno == EAGAIN)
    return Status::error("the reply could not be written at once: the other side does not read (EAGAIN)");
  return n < 0 ? Status::from_errno(errno, "write failed") : Status::errorf("short write of {} bytes", n);
}

}  // namespace hvvss
