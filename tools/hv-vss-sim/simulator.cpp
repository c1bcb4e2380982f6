#include "tools/hv-vss-sim/simulator.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <utility>

namespace hvvss::sim {

namespace {
int ms_until(Clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 1000));
}
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

KernelDevice::KernelDevice(std::string path, Timeline& timeline) : path_(std::move(path)), timeline_(timeline) {}

KernelDevice::~KernelDevice() {
  if (listen_fd_) unlink(path_.c_str());
}

std::string KernelDevice::listen() {
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

void KernelDevice::accept_client() {
  UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd) return;
  if (client_) {
    // The device is exclusive: a second open() gets EBUSY.
    timeline_.event("client_refused", {{"reason", Timeline::str("EBUSY: a daemon already has the device open")}});
    return;
  }
  client_ = std::move(fd);
  registered_ = false;
  timeline_.event("client_connected");
}

void KernelDevice::close_client(std::string_view why, std::string_view event) {
  if (!client_) return;
  client_.reset();
  registered_ = false;
  fake_thaw_queued_ = false;
  timeline_.event(event, {{"reason", Timeline::str(why)}});
}

void KernelDevice::drop_daemon(std::string_view why) {
  if (awaiting_reply_)
    timeline_.event("request_failed", {{"reason", Timeline::str("the device was reset: the host got HV_E_FAIL")}});
  awaiting_reply_ = false;
  close_client(why, "device_destroyed");
}

void KernelDevice::on_client_frame(Wait what, Exchange* exchange, Clock::time_point sent, bool& done) {
  std::byte buffer[256];
  ssize_t n = recv(client_.get(), buffer, sizeof buffer, 0);
  if (n <= 0) {
    // Release: a pending transaction is failed towards the host at once (on_reset).
    if (awaiting_reply_ && exchange) {
      *exchange = {Exchange::Kind::Disconnected, static_cast<uint32_t>(HvStatus::Fail), 0, ms_since(sent)};
      awaiting_reply_ = false;
      done = true;
    }
    close_client(n == 0 ? "daemon closed the device" : std::strerror(errno));
    return;
  }
  auto reject = [&](std::string_view reason, std::string_view problem) {
    report_rejection(reason, problem);
    if (awaiting_reply_ && exchange) {
      *exchange = {Exchange::Kind::Disconnected, static_cast<uint32_t>(HvStatus::Fail), 0, ms_since(sent)};
      awaiting_reply_ = false;
      done = true;
    }
    close_client("a rejected write (a socket cannot return EINVAL)");
  };
  if (static_cast<size_t>(n) != kFrameSize)
    return reject(fmt::format("Message size does not match length ({} bytes)", n), "a write that is not 12 bytes");
  uint8_t op = static_cast<uint8_t>(buffer[0]);
  if (op == static_cast<uint8_t>(Op::Register) || op == static_cast<uint8_t>(Op::Register1)) {
    if (awaiting_reply_)
      return reject("Got unexpected registration request", "a registration while a request waits for its reply");
    if (op == static_cast<uint8_t>(Op::Register)) {
      timeline_.event("register_legacy", {{"note", Timeline::str("REGISTER (128) never makes the device READY")}});
      return;
    }
    uint32_t version = kKernelVersion;
    send(client_.get(), &version, sizeof version, MSG_NOSIGNAL);
    registered_ = true;
    ++registrations_;
    timeline_.event("registered", {{"version", std::to_string(version)}});
    if (what == Wait::Registered && registrations_ >= wanted_registrations_) done = true;
    return;
  }
  if (!awaiting_reply_)
    return reject("Transaction not active",
                  std::exchange(fake_thaw_queued_, false) ? "" : "a reply that no request waits for (a second reply?)");
  Frame frame;
  std::memcpy(frame.data(), buffer, kFrameSize);
  awaiting_reply_ = false;
  if (exchange) *exchange = {Exchange::Kind::Replied, reply_status(frame), reply_flags(frame), ms_since(sent)};
  if (what == Wait::Reply) done = true;
}

void KernelDevice::report_rejection(std::string_view reason, std::string_view problem) {
  std::vector<Timeline::Field> fields = {{"reason", Timeline::str(reason)},
                                         {"errno", Timeline::str("EINVAL")},
                                         {"ok", Timeline::boolean(problem.empty())}};
  if (problem.empty()) {
    fields.emplace_back("note", Timeline::str("expected: the reply to hibernation's fake THAW"));
  } else {
    fields.emplace_back("problem", Timeline::str(problem));
    ++unexpected_rejections_;
  }
  timeline_.event("write_rejected", fields);
}

bool KernelDevice::pump(Clock::time_point until, Wait what, Exchange* exchange, Clock::time_point sent) {
  bool done = false;
  while (!done) {
    if (Clock::now() >= until) return what == Wait::Until;
    pollfd fds[3] = {{listen_fd_.get(), POLLIN, 0},
                     {client_ ? client_.get() : -1, POLLIN, 0},
                     {what == Wait::Stdin ? STDIN_FILENO : -1, POLLIN, 0}};
    int ready = poll(fds, 3, ms_until(until));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    if (fds[0].revents & POLLIN) accept_client();
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) on_client_frame(what, exchange, sent, done);
    if (fds[2].revents & (POLLIN | POLLHUP)) {
      std::string line;
      std::getline(std::cin, line);
      return true;
    }
  }
  return true;
}

bool KernelDevice::wait_for_daemon(Clock::duration timeout, uint64_t count) {
  if (registered_ && registrations_ >= count) return true;
  wanted_registrations_ = count;
  return pump(Clock::now() + timeout, Wait::Registered);
}

void KernelDevice::drain_client() {
  bool done = false;
  while (client_) {
    pollfd fd{client_.get(), POLLIN, 0};
    if (poll(&fd, 1, 0) <= 0) return;
    on_client_frame(Wait::Until, nullptr, {}, done);
  }
}

bool KernelDevice::queue(const std::vector<std::byte>& frame, std::string_view op) {
  drain_client();  // a frame written before this request cannot be its reply
  if (!registered_) return false;
  timeline_.event("request", {{"op", Timeline::str(op)}, {"bytes", std::to_string(frame.size())}});
  send(client_.get(), frame.data(), frame.size(), MSG_NOSIGNAL);
  awaiting_reply_ = true;
  return true;
}

Exchange KernelDevice::transact(const std::vector<std::byte>& frame, std::string_view op, Clock::duration timeout) {
  Exchange exchange;
  auto sent = Clock::now();
  if (!queue(frame, op)) {
    // No daemon: the kernel answers HV_E_FAIL itself.
    exchange.status = static_cast<uint32_t>(HvStatus::Fail);
    return exchange;
  }
  if (!pump(sent + timeout, Wait::Reply, &exchange, sent) && awaiting_reply_) {
    // "VSS: timeout waiting for daemon to reply": the host gets HV_E_FAIL, state READY.
    awaiting_reply_ = false;
    exchange = {Exchange::Kind::Timeout, static_cast<uint32_t>(HvStatus::Fail), 0, ms_since(sent)};
  }
  return exchange;
}

void KernelDevice::hold(Clock::duration duration) { pump(Clock::now() + duration, Wait::Until); }

void KernelDevice::hold_until_stdin() { pump(Clock::time_point::max(), Wait::Stdin); }

void KernelDevice::queue_fake_thaw() {
  if (!client_) return;
  Frame frame = encode_request(static_cast<uint8_t>(Op::Thaw));
  send(client_.get(), frame.data(), frame.size(), MSG_NOSIGNAL);
  awaiting_reply_ = false;  // hv_vss_pre_suspend forces READY: the reply will be rejected
  fake_thaw_queued_ = true;
  timeline_.event("fake_thaw", {{"note", Timeline::str("hibernation: THAW queued with the state forced to READY")}});
}

}  // namespace hvvss::sim
