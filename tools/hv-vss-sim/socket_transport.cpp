#include "tools/hv-vss-sim/socket_transport.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <utility>

namespace hvvss::sim {

SocketTransport::SocketTransport(std::string path, Timeline& timeline) : path_(std::move(path)), timeline_(timeline) {}

SocketTransport::~SocketTransport() {
  if (listen_fd_) unlink(path_.c_str());
}

std::string SocketTransport::start(Driver& driver) {
  driver_ = &driver;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) return fmt::format("{}: path too long for a socket", path_);
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  listen_fd_ = UniqueFd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  unlink(path_.c_str());
  if (!listen_fd_ || bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_.get(), 4) != 0)
    return fmt::format("{}: {}", path_, std::strerror(errno));
  timeline_.event("listening", {{"socket", Timeline::str(path_)}});
  return {};
}

void SocketTransport::add_pollfds(std::vector<pollfd>& fds) {
  fds.push_back({listen_fd_.get(), POLLIN, 0});
  fds.push_back({client_ ? client_.get() : -1, POLLIN, 0});
}

void SocketTransport::dispatch(std::span<const pollfd> fds) {
  if (fds[0].revents & POLLIN) accept_client();
  if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) receive();
}

void SocketTransport::accept_client() {
  UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd || !driver_->on_open()) return;  // refused: the connection is closed at once
  client_ = std::move(fd);
}

void SocketTransport::close_client(std::string_view why) {
  if (!client_) return;
  client_.reset();
  driver_->on_release(why);
}

void SocketTransport::receive() {
  std::byte buffer[256];
  ssize_t n = recv(client_.get(), buffer, sizeof buffer, 0);
  if (n <= 0) return close_client(n == 0 ? "daemon closed the device" : std::strerror(errno));
  if (driver_->on_write(std::span(buffer, static_cast<size_t>(n))) != 0)
    close_client("a rejected write (a socket cannot return EINVAL)");
}

bool SocketTransport::deliver(std::span<const std::byte> message, OnRead on_read) {
  if (!client_) return false;
  send(client_.get(), message.data(), message.size(), MSG_NOSIGNAL);
  if (on_read) on_read();  // a socket cannot tell when it was read
  return true;
}

void SocketTransport::destroy() { close_client("the device was destroyed"); }

}  // namespace hvvss::sim
