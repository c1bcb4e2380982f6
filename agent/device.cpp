#include "agent/device.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace hvvss {

namespace {

constexpr int kHandshakeTimeoutMs = 5000;
constexpr size_t kReadBuffer = 256;  // larger than any frame, so oversized ones are seen whole

std::string open_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return fmt::format(
          "{} does not exist: the Hyper-V 'Backup (volume snapshot)' integration service is not offered "
          "to this VM, or the hv_utils module is not loaded",
          path);
    case EBUSY:
      return fmt::format(
          "{} is busy: another VSS daemon has it open, most likely hv-vss-daemon.service "
          "(hypervvssd.service on Fedora/RHEL) from hyperv-daemons; stop and disable it",
          path);
    case EACCES:
    case EPERM: return fmt::format("{}: {} (hv-vss-agent must run as root)", path, std::strerror(err));
    default: return fmt::format("{}: {}", path, std::strerror(err));
  }
}

UniqueFd connect_socket(const std::string& path, int& err) {
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
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

std::string Device::connect(const std::string& path) {
  if (auto e = open(path); !e.empty()) return e;
  return register_with_kernel();
}

std::string Device::open(const std::string& path) {
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
    return fmt::format("{} is neither a character device nor a socket", path);
  }
  if (!fd_) return open_error(path, err);
  return {};
}

std::string Device::register_with_kernel() {
  std::string error = handshake(path_);
  if (!error.empty()) close();
  return error;
}

std::string Device::handshake(const std::string& path) {
  std::string refused =
      fmt::format("{} closed the channel during registration: another VSS daemon is probably connected", path);
  Frame hello = encode_request(static_cast<uint8_t>(Op::Register1));
  if (retry_eintr([&] { return send_frame(hello); }) != static_cast<ssize_t>(hello.size()))
    return errno == EPIPE || errno == ECONNRESET
               ? refused
               : fmt::format("{}: registration (REGISTER1) failed: {}", path, std::strerror(errno));
  pollfd pfd{fd_.get(), POLLIN, 0};
  int ready;
  do ready = poll(&pfd, 1, kHandshakeTimeoutMs);
  while (ready < 0 && errno == EINTR);
  if (ready == 0) return fmt::format("{}: no version reply within {} ms of REGISTER1", path, kHandshakeTimeoutMs);
  uint8_t buffer[kReadBuffer];
  ssize_t n = retry_eintr([&] { return ::read(fd_.get(), buffer, sizeof buffer); });
  if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) return refused;
  if (n < 0) return fmt::format("{}: reading the version reply failed: {}", path, std::strerror(errno));
  if (n != static_cast<ssize_t>(kVersionReplySize))
    return fmt::format("{}: invalid version negotiation: {}-byte reply, expected {}", path, n, kVersionReplySize);
  std::memcpy(&kernel_version_, buffer, sizeof kernel_version_);
  return {};
}

Device::ReadResult Device::read(std::vector<std::byte>& frame, std::string& error) {
  frame.resize(kReadBuffer);
  ssize_t n = retry_eintr([&] { return ::read(fd_.get(), frame.data(), frame.size()); });
  if (n > 0) {
    frame.resize(static_cast<size_t>(n));
    return ReadResult::Frame;
  }
  if (n < 0 && errno == EAGAIN) return ReadResult::Nothing;  // spurious wake-up (PROTOCOL.md §2.3)
  error = n == 0 ? "the channel was closed by the other side" : fmt::format("read failed: {}", std::strerror(errno));
  return ReadResult::Lost;
}

ssize_t Device::send_frame(const Frame& frame) {
  return socket_ ? ::send(fd_.get(), frame.data(), frame.size(), MSG_NOSIGNAL)
                 : ::write(fd_.get(), frame.data(), frame.size());
}

bool Device::write(const Frame& frame, std::string& error) {
  ssize_t n = retry_eintr([&] { return send_frame(frame); });
  if (n == static_cast<ssize_t>(frame.size())) return true;
  if (n < 0 && errno == EINVAL)
    error = "the kernel rejected the reply (EINVAL): it no longer waits for one (timeout or hibernation THAW)";
  else
    error = n < 0 ? fmt::format("write failed: {}", std::strerror(errno)) : fmt::format("short write of {} bytes", n);
  return false;
}

}  // namespace hvvss
