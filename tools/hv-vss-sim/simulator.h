// The kernel's side of /dev/vmbus/hv_vss (PROTOCOL.md §2, §3), reached through a Transport (a
// socket, or a CUSE character device): one daemon at a time (others get EBUSY), the REGISTER1
// handshake (the device is ready once the daemon has read the version), one queued request, the
// 12-byte size check, per-op timeouts after which the host gets HV_E_FAIL, and rejection (EINVAL)
// of replies that no request waits for. Every rejected write is reported and counted, except the
// reply to a fake THAW, which the kernel is meant to reject.
#pragma once

#include "agent/protocol.h"
#include "tools/hv-vss-sim/timeline.h"
#include "tools/hv-vss-sim/transport.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hvvss::sim {

using Clock = std::chrono::steady_clock;

struct Exchange {
  enum class Kind { Replied, Timeout, NoDaemon, Disconnected } kind = Kind::NoDaemon;
  uint32_t status = 0;  // the HRESULT the host received
  uint32_t flags = 0;
  double latency_ms = 0;
};

class KernelDevice final : private Driver {
 public:
  KernelDevice(std::unique_ptr<Transport> transport, Timeline& timeline);
  std::string start();  // error text or ""

  // Waits until a daemon is registered (REGISTER1 answered) and at least `count` registrations
  // have happened since the start; registrations() + 1 waits for a daemon to register anew.
  bool wait_for_daemon(Clock::duration timeout, uint64_t count = 1);
  uint64_t registrations() const { return registrations_; }
  // Queues one request without waiting for its reply; false when no daemon is registered.
  bool queue(const std::vector<std::byte>& frame, std::string_view op);
  // Queues one request and waits for the reply or the kernel's timeout. Frames that were
  // already waiting are judged first, as writes made while no request was queued.
  Exchange transact(const std::vector<std::byte>& frame, std::string_view op, Clock::duration timeout);
  // Keeps serving the device (refusing other daemons, rejecting stray writes) for `duration`.
  void hold(Clock::duration duration);
  // Holds until a line (or EOF) arrives on stdin.
  void hold_until_stdin();
  // Serves the device until a line arrives on stdin and returns it; nullopt at EOF.
  std::optional<std::string> next_stdin_line();
  // The driver goes away (rescind / rmmod): the daemon sees POLLHUP and must let go.
  void drop_daemon(std::string_view why);
  // Hibernation: a THAW is queued while the state is already READY, so any reply is rejected
  // (the one rejection that is expected, and not counted).
  void queue_fake_thaw();
  // Rejected writes that no scenario expected: each one is a failure of the daemon.
  int unexpected_rejections() const { return unexpected_rejections_; }

 private:
  bool on_open() override;
  int on_write(std::span<const std::byte> frame) override;
  void on_release(std::string_view why) override;

  // Serves the transport until `done()` holds (true), or until `until` or a transport failure
  // (false); with `line`, a line on stdin (stored there, nullopt at EOF) also ends it (true).
  bool pump(Clock::time_point until, const std::function<bool()>& done, std::optional<std::string>* line = nullptr);
  // Judges every frame already waiting from the daemon without blocking (a second reply, say).
  void drain();
  int reject(std::string_view reason, std::string_view problem);

  std::unique_ptr<Transport> transport_;
  Timeline& timeline_;
  bool open_ = false;
  bool registered_ = false;
  uint64_t registrations_ = 0;
  bool awaiting_reply_ = false;      // a request is outstanding (USERSPACE_REQ)
  Clock::time_point sent_;           // when it was queued
  std::optional<Exchange> outcome_;  // how the outstanding request ended
  bool fake_thaw_queued_ = false;    // the daemon's next stray reply answers the fake THAW
  int unexpected_rejections_ = 0;
};

}  // namespace hvvss::sim
