// How the simulated kernel device reaches a daemon. The kernel's decisions (who may open, what a
// write means, what a release undoes) are the Driver's; a Transport only carries them: it tells
// the Driver when a daemon opens, writes or lets go, delivers the Driver's messages to the
// daemon's reads, and fails a write with the errno the Driver chose. Two transports exist: a
// SOCK_SEQPACKET socket (anywhere, no privileges) and a CUSE character device (a real
// /dev/vmbus/hv_vss, where /dev/cuse exists).
#pragma once

#include <poll.h>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::sim {

class Driver {
 public:
  virtual ~Driver() = default;
  // A daemon opens the device; false refuses it with EBUSY (the device is exclusive).
  virtual bool on_open() = 0;
  // A daemon wrote one frame: 0 takes it, anything else is the errno its write fails with.
  virtual int on_write(std::span<const std::byte> frame) = 0;
  // The daemon's last reference to the open device is gone.
  virtual void on_release(std::string_view why) = 0;
};

class Transport {
 public:
  using OnRead = std::function<void()>;
  virtual ~Transport() = default;
  // Makes the device reachable; returns error text, or "" once daemons can open it.
  virtual std::string start(Driver& driver) = 0;
  // The descriptors to wait on, appended to `fds`; dispatch() gets the same entries back, with
  // their revents, in the same order.
  virtual void add_pollfds(std::vector<pollfd>& fds) = 0;
  virtual void dispatch(std::span<const pollfd> fds) = 0;
  // Queues one message for the open daemon's next read (the kernel's queue holds one); false when
  // no daemon has the device open or a message is still queued. `on_read` runs once the daemon has
  // read it.
  virtual bool deliver(std::span<const std::byte> message, OnRead on_read = {}) = 0;
  // Driver teardown: the daemon's pending and later reads fail, poll reports POLLHUP, and the
  // device is free again once the daemon released it.
  virtual void destroy() = 0;
  // A failure of the transport itself (the CUSE channel lost), or "".
  virtual std::string failure() const = 0;
};

}  // namespace hvvss::sim
