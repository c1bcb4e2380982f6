// The daemon, like timesyncd's manager: it owns the channel to the kernel's VSS driver (reading
// requests, writing replies, reconnecting with backoff after any error), the participants and the
// transaction engine, the runtime directory's lock, start-up recovery (each participant undoes
// what a dead predecessor left frozen before the agent registers, or serves D-Bus) and what
// systemd is told (readiness, status and, under WatchdogSec=, the watchdog's pings).
// Nothing it does on the loop blocks: registration waits for the version reply as an event, with
// a timer for its limit, and replies and notifications are sent without waiting.
#pragma once

#include "agent/bus.h"
#include "agent/device.h"
#include "agent/intent.h"
#include "agent/log_observer.h"
#include "agent/notify.h"
#include "agent/participant.h"
#include "agent/status.h"
#include "agent/transaction.h"

#include <systemd/sd-event.h>
#include <memory>
#include <string>
#include <vector>

namespace hvvss {

struct ManagerSettings {
  std::string device = "/dev/vmbus/hv_vss";
  std::string runtime_dir = "/run/hv-vss-agent";
  EngineSettings engine;
};

class Manager final : private EngineObserver {
 public:
  // `bus` (optional) is started once start-up recovery is over.
  Manager(sd_event* loop, ManagerSettings settings, std::vector<std::unique_ptr<Participant>> participants,
          BusService* bus);
  ~Manager() override;
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Opens the channel (a second daemon is refused here, before it touches anything), takes the
  // runtime directory, then recovers and registers on the loop. An error stops the start-up.
  Status start();
  // Thaws everything, waits for every participant, then ends the loop.
  void stop();

 private:
  enum class Channel { Closed, Registering, Registered };

  void recover_next();
  // Opens the channel if need be and sends REGISTER1; the version reply comes to on_io().
  void register_channel();
  void on_version_reply(uint32_t revents);
  void registration_failed(const Status& why);
  void on_registered();
  void close_channel();
  static int on_io(sd_event_source* source, int fd, uint32_t revents, void* userdata);
  void on_frame(std::span<const std::byte> bytes);
  bool send_reply(uint8_t op, HvStatus status);
  // Closes the channel at once; the engine learns of it on the next loop iteration, so that a
  // failed reply never re-enters the engine from inside its own answer.
  void lose_channel(std::string_view why);
  void schedule_reconnect();
  void exit(int code);
  void notify(const std::string& text);

  void request_answered(const EventContext& at, HvStatus status, std::string_view detail, Clock::duration took,
                        bool delivered) override;

  sd_event* loop_;
  ManagerSettings settings_;
  std::vector<std::unique_ptr<Participant>> participants_;
  TransactionEngine engine_;
  LogObserver log_;
  BusService* bus_;
  Device device_;
  RuntimeLock lock_;
  Notifier notifier_;
  Watchdog watchdog_;
  Timer reconnect_timer_;
  Timer registration_timer_;  // the limit for the version reply
  sd_event_source* io_ = nullptr;
  Channel channel_ = Channel::Closed;
  std::chrono::milliseconds backoff_;
  std::vector<Participant*> to_recover_;  // start-up recovery still to run, next last
  bool recovered_ = false;                // start-up recovery is over
  bool registered_once_ = false;
  bool stopping_ = false;
};

}  // namespace hvvss
