// The kernel's side of /dev/vmbus/hv_vss, played over a SOCK_SEQPACKET Unix socket: one daemon
// at a time (others are refused), the REGISTER1 handshake, one queued request, the 12-byte size
// check, per-op timeouts after which the host gets HV_E_FAIL, and rejection of replies that no
// request waits for. A socket cannot fail a write the way the kernel does, so a rejected write
// closes the connection; the daemon sees the same thing it must handle after a failed write:
// it has to thaw, reopen and register again (PROTOCOL.md §2, §3). Every rejected write is
// reported and counted, except the reply to a fake THAW, which the kernel is meant to reject.
#pragma once

#include "agent/protocol.h"
#include "agent/unique_fd.h"
#include "tools/hv-vss-sim/timeline.h"

#include <chrono>
#include <cstdint>
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

class KernelDevice {
 public:
  KernelDevice(std::string path, Timeline& timeline);
  ~KernelDevice();
  std::string listen();  // error text or ""

  // Waits until a daemon is registered (REGISTER1 answered) and at least `count` registrations
  // have happened since the start; registrations() + 1 waits for a daemon to register anew.
  bool wait_for_daemon(Clock::duration timeout, uint64_t count = 1);
  uint64_t registrations() const { return registrations_; }
  // Queues one request without waiting for its reply; false when no daemon is registered.
  bool queue(const std::vector<std::byte>& frame, std::string_view op);
  // Queues one request and waits for the reply or the kernel's timeout. Frames that were
  // already waiting are judged first, as writes made while no request was queued.
  Exchange transact(const std::vector<std::byte>& frame, std::string_view op, Clock::duration timeout);
  // Keeps serving the device (refusing clients, rejecting stray writes) for `duration`.
  void hold(Clock::duration duration);
  // Holds until a line (or EOF) arrives on stdin.
  void hold_until_stdin();
  // The driver goes away (rescind / rmmod): the daemon sees POLLHUP and must let go.
  void drop_daemon(std::string_view why);
  // Hibernation: a THAW is queued while the state is already READY, so any reply is rejected
  // (the one rejection that is expected, and not counted).
  void queue_fake_thaw();
  // Judges every frame already waiting from the daemon without blocking (a second reply, say).
  void drain_client();
  // Rejected writes that no scenario expected: each one is a failure of the daemon.
  int unexpected_rejections() const { return unexpected_rejections_; }
  bool registered() const { return registered_; }

 private:
  enum class Wait { Until, Reply, Registered, Stdin };
  // One poll loop for every state; returns when `what` happened or at `until`.
  bool pump(Clock::time_point until, Wait what, Exchange* exchange = nullptr, Clock::time_point sent = {});
  void on_client_frame(Wait what, Exchange* exchange, Clock::time_point sent, bool& done);
  void accept_client();
  // Reports a write the kernel fails with EINVAL; an empty `problem` marks the expected one.
  void report_rejection(std::string_view reason, std::string_view problem);
  void close_client(std::string_view why, std::string_view event = "client_closed");

  std::string path_;
  Timeline& timeline_;
  UniqueFd listen_fd_;
  UniqueFd client_;
  bool registered_ = false;
  uint64_t registrations_ = 0;
  uint64_t wanted_registrations_ = 0;
  bool awaiting_reply_ = false;    // a request is outstanding (USERSPACE_REQ)
  bool fake_thaw_queued_ = false;  // the client's next stray reply answers the fake THAW
  int unexpected_rejections_ = 0;
};

}  // namespace hvvss::sim
