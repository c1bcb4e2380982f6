#include "tools/hv-vss-sim/simulator.h"

#include <fmt/format.h>
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
Exchange failed(Exchange::Kind kind, Clock::time_point sent) {
  return {kind, static_cast<uint32_t>(HvStatus::Fail), 0, ms_since(sent)};
}
}  // namespace

KernelDevice::KernelDevice(std::unique_ptr<Transport> transport, Timeline& timeline)
    : transport_(std::move(transport)), timeline_(timeline) {}

std::string KernelDevice::start() { return transport_->start(*this); }

bool KernelDevice::on_open() {
  if (open_) {
    timeline_.event("client_refused", {{"reason", Timeline::str("EBUSY: a daemon already has the device open")}});
    return false;
  }
  open_ = true;
  registered_ = false;
  timeline_.event("client_connected");
  return true;
}

void KernelDevice::on_release(std::string_view why) {
  // on_reset: a request still waiting for its reply is failed towards the host at once.
  if (awaiting_reply_) outcome_ = failed(Exchange::Kind::Disconnected, sent_);
  awaiting_reply_ = false;
  open_ = false;
  registered_ = false;
  fake_thaw_queued_ = false;
  timeline_.event("client_closed", {{"reason", Timeline::str(why)}});
}

int KernelDevice::reject(std::string_view reason, std::string_view problem) {
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
  return EINVAL;
}

// The checks of the kernel's on_msg, in its order (PROTOCOL.md §2.4).
int KernelDevice::on_write(std::span<const std::byte> frame) {
  if (frame.size() != kFrameSize)
    return reject(fmt::format("Message size does not match length ({} bytes)", frame.size()),
                  "a write that is not 12 bytes");
  uint8_t op = static_cast<uint8_t>(frame[0]);
  if (op == static_cast<uint8_t>(Op::Register) || op == static_cast<uint8_t>(Op::Register1)) {
    if (awaiting_reply_)
      return reject("Got unexpected registration request", "a registration while a request waits for its reply");
    if (op == static_cast<uint8_t>(Op::Register)) {
      timeline_.event("register_legacy", {{"note", Timeline::str("REGISTER (128) never makes the device READY")}});
      return 0;
    }
    static const uint32_t version = kKernelVersion;
    // READY once the daemon has read the version (the kernel's on_read callback).
    bool queued = transport_->deliver(std::as_bytes(std::span(&version, 1)), [this] {
      registered_ = true;
      ++registrations_;
      timeline_.event("registered", {{"version", std::to_string(version)}});
    });
    return queued ? 0 : EFAULT;
  }
  if (!awaiting_reply_)
    return reject("Transaction not active",
                  std::exchange(fake_thaw_queued_, false) ? "" : "a reply that no request waits for (a second reply?)");
  Frame reply;
  std::memcpy(reply.data(), frame.data(), kFrameSize);
  awaiting_reply_ = false;
  outcome_ = Exchange{Exchange::Kind::Replied, reply_status(reply), reply_flags(reply), ms_since(sent_)};
  return 0;
}

bool KernelDevice::pump(Clock::time_point until, const std::function<bool()>& done, std::optional<std::string>* line) {
  std::vector<pollfd> fds;
  while (!done()) {
    if (Clock::now() >= until || !transport_->failure().empty()) return false;
    fds.assign({{line ? STDIN_FILENO : -1, POLLIN, 0}});
    transport_->add_pollfds(fds);
    int ready = poll(fds.data(), fds.size(), ms_until(until));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      std::string text;
      if (std::getline(std::cin, text))
        *line = std::move(text);
      else
        line->reset();
      return true;
    }
    transport_->dispatch(std::span(fds).subspan(1));
  }
  return true;
}

void KernelDevice::drain() {
  std::vector<pollfd> fds;
  while (transport_->failure().empty()) {
    fds.clear();
    transport_->add_pollfds(fds);
    if (poll(fds.data(), fds.size(), 0) <= 0) return;
    transport_->dispatch(fds);
  }
}

bool KernelDevice::wait_for_daemon(Clock::duration timeout, uint64_t count) {
  return pump(Clock::now() + timeout, [&] { return registered_ && registrations_ >= count; });
}

bool KernelDevice::queue(const std::vector<std::byte>& frame, std::string_view op) {
  drain();  // a frame written before this request cannot be its reply
  if (!registered_) return false;
  timeline_.event("request", {{"op", Timeline::str(op)}, {"bytes", std::to_string(frame.size())}});
  // USERSPACE_REQ (and the timeout) before the message is queued, as vss_send_op does.
  awaiting_reply_ = true;
  sent_ = Clock::now();
  outcome_.reset();
  if (transport_->deliver(frame)) return true;
  awaiting_reply_ = false;  // "VSS: failed to communicate to the daemon": the host gets HV_E_FAIL
  timeline_.event("request_failed", {{"reason", Timeline::str("a message is still queued for the daemon")}});
  return false;
}

Exchange KernelDevice::transact(const std::vector<std::byte>& frame, std::string_view op, Clock::duration timeout) {
  if (!queue(frame, op)) {
    // No daemon: the kernel answers HV_E_FAIL itself.
    return {Exchange::Kind::NoDaemon, static_cast<uint32_t>(HvStatus::Fail), 0, 0};
  }
  if (pump(sent_ + timeout, [&] { return outcome_.has_value(); })) return *outcome_;
  // "VSS: timeout waiting for daemon to reply": the host gets HV_E_FAIL, state READY.
  awaiting_reply_ = false;
  return failed(Exchange::Kind::Timeout, sent_);
}

void KernelDevice::hold(Clock::duration duration) {
  pump(Clock::now() + duration, [] { return false; });
}

void KernelDevice::hold_until_stdin() { next_stdin_line(); }

std::optional<std::string> KernelDevice::next_stdin_line() {
  std::optional<std::string> line;
  pump(
      Clock::time_point::max(), [] { return false; }, &line);
  return line;
}

void KernelDevice::drop_daemon(std::string_view why) {
  if (awaiting_reply_)
    timeline_.event("request_failed", {{"reason", Timeline::str("the device was reset: the host got HV_E_FAIL")}});
  awaiting_reply_ = false;
  timeline_.event("device_destroyed", {{"reason", Timeline::str(why)}});
  transport_->destroy();
}

void KernelDevice::queue_fake_thaw() {
  Frame frame = encode_request(static_cast<uint8_t>(Op::Thaw));
  if (!transport_->deliver(frame)) return;
  awaiting_reply_ = false;  // hv_vss_pre_suspend forces READY: the reply will be rejected
  fake_thaw_queued_ = true;
  timeline_.event("fake_thaw", {{"note", Timeline::str("hibernation: THAW queued with the state forced to READY")}});
}

}  // namespace hvvss::sim
