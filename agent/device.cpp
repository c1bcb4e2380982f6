#include "agent/device.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace hvvss {

namespace {

constexpr size_t kReadBuffer = 256;  // larger than any frame, so oversized ones are seen whole
// The kernel's misc device, or a CUSE device of the same name: hv-vss-sim --cuse, which stands in
// for the kernel where there is no VMBus (a VM under QEMU); only root can create one.
constexpr std::array<std::string_view, 2> kVssClasses = {"misc", "cuse"};
constexpr std::string_view kVssName = "vmbus/hv_vss";  // DEVNAME of /dev/vmbus/hv_vss

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

// A sysfs attribute: one read returns all of it.
std::string read_attribute(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char buffer[4096];
  ssize_t n = fd ? ::read(fd.get(), buffer, sizeof buffer) : -1;
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

// Asks sysfs what the character device `rdev` is, and refuses anything but the VSS misc
// device, naming what it is instead.
Status identify(const std::string& path, dev_t rdev) {
  std::string sys = fmt::format("/sys/dev/char/{}:{}", major(rdev), minor(rdev));
  std::error_code ec;
  std::string device_class = std::filesystem::read_symlink(sys + "/subsystem", ec).filename();
  std::string name;
  std::string uevent = read_attribute(sys + "/uevent");
  for (size_t start = 0, end; start < uevent.size(); start = end + 1) {
    end = uevent.find('\n', start);
    if (end == std::string::npos) end = uevent.size();
    std::string_view line(uevent.data() + start, end - start);
    if (line.starts_with("DEVNAME=")) name = line.substr(8);
  }
  if (std::ranges::find(kVssClasses, device_class) != kVssClasses.end() && name == kVssName) return {};
  std::string what = name.empty() ? fmt::format("a character device ({}:{}) that sysfs does not know by name",
                                                major(rdev), minor(rdev))
                                  : fmt::format("the character device /dev/{} ({}:{}, class {})", name, major(rdev),
                                                minor(rdev), device_class.empty() ? "unknown" : device_class);
  return Status::errorf(
      "{} is {}, not the Hyper-V VSS device (the misc device {}): refusing to use it; nothing was written to it", path,
      what, kVssName);
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
  // O_PATH looks at what the path names without opening it for reading or writing: nothing is
  // opened for writing before it has been identified.
  UniqueFd node(::open(path.c_str(), O_PATH | O_CLOEXEC));
  struct stat st {};
  if (!node || fstat(node.get(), &st) != 0) return open_error(path, errno);
  int err = 0;
  socket_ = S_ISSOCK(st.st_mode);
  if (socket_) {
    fd_ = connect_socket(path, err);
  } else if (S_ISCHR(st.st_mode)) {
    if (Status s = identify(path, st.st_rdev); !s) return s;
    // Reopened through the O_PATH descriptor, so that it is the very node that was identified
    // even if the path has changed since.
    std::string node_path = fmt::format("/proc/self/fd/{}", node.get());
    fd_ = UniqueFd(::open(node_path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY));
    err = errno;
    if (!fd_ && err == ENOENT)
      return Status::from_errno(err, fmt::format("{}: cannot reopen it as {}", path, node_path));
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
