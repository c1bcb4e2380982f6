// The simulated device as a SOCK_SEQPACKET Unix socket, which needs no privileges: a connection
// is an open(), a message a read or write of one frame, a hang-up a release. A socket cannot fail
// a single write, so a write the Driver rejects closes the connection: the daemon sees what it must
// handle after a failed write anyway (thaw, reopen, register again).
#pragma once

#include "agent/unique_fd.h"
#include "tools/hv-vss-sim/timeline.h"
#include "tools/hv-vss-sim/transport.h"

namespace hvvss::sim {

class SocketTransport final : public Transport {
 public:
  SocketTransport(std::string path, Timeline& timeline);
  ~SocketTransport() override;
  std::string start(Driver& driver) override;
  void add_pollfds(std::vector<pollfd>& fds) override;
  void dispatch(std::span<const pollfd> fds) override;
  bool deliver(std::span<const std::byte> message, OnRead on_read) override;
  void destroy() override;
  std::string failure() const override { return {}; }

 private:
  void accept_client();
  void receive();
  void close_client(std::string_view why);

  std::string path_;
  Timeline& timeline_;
  Driver* driver_ = nullptr;
  UniqueFd listen_fd_;
  UniqueFd client_;
};

}  // namespace hvvss::sim
