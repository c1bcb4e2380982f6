// Something that works on the agent's system bus connection without owning it: the writer
// registry, the unit hooks' systemd client. The bus service hands each user the connection once it
// serves on it, and takes it back (nullptr) when the connection is gone, so that users never
// connect, reconnect or watch the bus themselves.
#pragma once

#include <systemd/sd-bus.h>

namespace hvvss {

class BusUser {
 public:
  virtual ~BusUser() = default;
  // The connection to use from now on, or nullptr once it is gone (everything asked on the old
  // one is lost: its slots are freed with it).
  virtual void connected(sd_bus* bus) = 0;
};

}  // namespace hvvss
