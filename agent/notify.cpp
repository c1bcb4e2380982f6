#include "agent/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace hvvss {

Notifier::Notifier(sd_event* loop, std::string address) : loop_(loop), address_(std::move(address)) {
  if (address_.empty()) return;
  bool abstract = address_[0] == '@';
  if ((!abstract && address_[0] != '/') || address_.size() >= sizeof addr_.sun_path) {
    spdlog::warn("NOTIFY_SOCKET={} is not a Unix socket path or @name: systemd will not be notified", address_);
    address_.clear();
    return;
  }
  addr_.sun_family = AF_UNIX;
  std::memcpy(addr_.sun_path, address_.data(), address_.size());
  if (abstract) addr_.sun_path[0] = '\0';
  // A path counts its terminating NUL; an abstract name is exactly its bytes (as sd_notify does).
  addr_size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + (abstract ? 0 : 1));
}

std::string Notifier::address_from_environment() {
  const char* address = std::getenv("NOTIFY_SOCKET");
  return address ? address : "";
}

Notifier::~Notifier() { sd_event_source_disable_unref(watch_); }

void Notifier::notify(std::string_view message) {
  if (address_.empty()) return;
  while (!message.empty()) {
    size_t end = message.find('\n');
    std::string_view line = message.substr(0, end);
    message = end == std::string_view::npos ? std::string_view{} : message.substr(end + 1);
    if (line.empty()) continue;
    std::string_view field = line.substr(0, line.find('='));
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.first == field; });
    if (it != pending_.end())
      it->second = line;
    else
      pending_.emplace_back(field, line);
  }
  if (waiting_) return;  // sent as one message once the socket drains
  flush();
}

// Connected, so that EPOLLOUT means there is room in the receiver's queue (a Unix datagram
// socket that is not connected is always writable).
bool Notifier::connect_socket() {
  if (fd_) return true;
  fd_ = UniqueFd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd_ && connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr_), addr_size_) == 0) return true;
  spdlog::debug("cannot reach the notify socket {}: {}", address_, std::strerror(errno));
  fd_.reset();
  return false;
}

void Notifier::flush() {
  if (pending_.empty()) return;
  if (!connect_socket()) {
    pending_.clear();
    return;
  }
  std::string text;
  for (const auto& [field, line] : pending_) text.append(text.empty() ? "" : "\n").append(line);
  ssize_t n;
  do n = send(fd_.get(), text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n >= 0) {
    pending_.clear();
  } else if (errno == EAGAIN) {
    wait_for_room();
  } else {
    // The next message connects afresh (systemd may have been re-executed).
    spdlog::debug("notify socket {}: {}; dropped: {}", address_, std::strerror(errno), text);
    pending_.clear();
    sd_event_source_disable_unref(watch_);
    watch_ = nullptr;
    fd_.reset();
  }
}

void Notifier::wait_for_room() {
  int r = watch_ ? 0 : sd_event_add_io(loop_, &watch_, fd_.get(), EPOLLOUT, &Notifier::on_writable, this);
  if (r >= 0) r = sd_event_source_set_enabled(watch_, SD_EVENT_ONESHOT);
  if (r < 0) {
    spdlog::debug("cannot wait for the notify socket to drain: {}; dropped", std::strerror(-r));
    pending_.clear();
    return;
  }
  waiting_ = true;
  spdlog::debug("the notify socket {} is full: keeping the latest status until it drains", address_);
}

int Notifier::on_writable(sd_event_source*, int, uint32_t, void* userdata) {
  auto* self = static_cast<Notifier*>(userdata);
  self->waiting_ = false;  // a one-shot source: off once it fired
  self->flush();
  return 0;
}

Status Watchdog::start() {
  uint64_t usec = 0;
  int r = sd_watchdog_enabled(0, &usec);  // reads the environment only
  if (r < 0) return Status::from_errno(-r, "cannot read $WATCHDOG_USEC");
  if (r == 0 || !notifier_->enabled()) return {};
  interval_ = std::chrono::microseconds(usec / 2);
  spdlog::debug("systemd's watchdog: pinging every {} ms",
                std::chrono::duration_cast<std::chrono::milliseconds>(interval_).count());
  return timer_.arm(Clock::now() + interval_);
}

void Watchdog::ping() {
  notifier_->notify("WATCHDOG=1");
  if (Status s = timer_.arm(Clock::now() + interval_); !s)
    spdlog::critical("{}: systemd's watchdog is no longer pinged and will restart the agent", s.message());
}

}  // namespace hvvss
