// What systemd is told (READY=1, STATUS=…), sent to $NOTIFY_SOCKET without ever blocking the
// loop. Not sd_notify(): libsystemd 252 sends on a blocking socket without MSG_DONTWAIT, so a
// notify socket that nobody reads stalls the whole agent, auto-thaw included. Here a full socket
// keeps the latest value of each field (READY=1 is never lost) and sends them as one message as
// soon as the socket drains.
#pragma once

#include "agent/event_loop.h"
#include "agent/status.h"
#include "agent/unique_fd.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-event.h>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hvvss {

class Notifier {
 public:
  // `address` as in $NOTIFY_SOCKET: a path, or "@name" for an abstract socket; "" turns
  // notifications off.
  Notifier(sd_event* loop, std::string address);
  // Reads $NOTIFY_SOCKET.
  static std::string address_from_environment();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Sends newline-separated FIELD=value assignments now, or once the socket has room.
  void notify(std::string_view message);
  // True while a message waits for the socket to drain.
  bool pending() const { return !pending_.empty(); }
  // False when there is no notify socket to send to.
  bool enabled() const { return !address_.empty(); }

 private:
  static int on_writable(sd_event_source* source, int fd, uint32_t revents, void* userdata);
  bool connect_socket();
  void flush();
  void wait_for_room();

  sd_event* loop_;
  std::string address_;
  sockaddr_un addr_{};
  socklen_t addr_size_ = 0;
  UniqueFd fd_;
  sd_event_source* watch_ = nullptr;  // EPOLLOUT, armed once a send found the socket full
  bool waiting_ = false;
  std::vector<std::pair<std::string, std::string>> pending_;  // field → latest value, first-set order
};

// systemd's watchdog (WatchdogSec=): WATCHDOG=1 every half period, sent by a timer on the event
// loop, so that a loop that stops turning stops the pings and systemd restarts the agent. Outside
// systemd's watchdog there is no timer at all, and an idle agent never wakes up.
class Watchdog {
 public:
  Watchdog(sd_event* loop, Notifier* notifier) : notifier_(notifier), timer_(loop, [this] { ping(); }) {}

  // Starts the pings if $WATCHDOG_USEC asks for them ($WATCHDOG_PID, if set, naming this process)
  // and there is a notify socket; does nothing otherwise.
  Status start();
  // True while pings are scheduled.
  bool active() const { return timer_.due().has_value(); }

 private:
  void ping();

  Notifier* notifier_;
  Timer timer_;
  Clock::duration interval_{};
};

}  // namespace hvvss
