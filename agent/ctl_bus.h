// hv-vssctl's side of io.github.hvvss.Agent1: a connection to the system bus with one method per
// call of the agent's interface, each decoding its reply, and a subscription to the agent's
// signals for `monitor`. A failure comes back as D-Bus reports it, an error name and a message,
// because the name decides hv-vssctl's exit code (exit_code_for_error); local failures (no bus,
// a malformed reply) get the name sd-bus gives their errno.
#pragma once

#include "agent/ctl_format.h"

#include <systemd/sd-bus.h>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hvvss::ctl {

struct BusError {
  std::string name;
  std::string message;
};
// std::nullopt: the call succeeded.
using CallResult = std::optional<BusError>;

// What the subscription does with each signal of the agent, and when the bus connection drops.
struct EventSink {
  std::function<void(const PhaseChanged&)> phase;
  std::function<void(const TransactionFinished&)> finished;
  std::function<void(const PropertiesChanged&)> properties;
  std::function<void()> disconnected;
};

class AgentClient {
 public:
  // Connects to the system bus (sd_bus_open_system: DBUS_SYSTEM_BUS_ADDRESS or the default socket).
  [[nodiscard]] static CallResult connect(std::unique_ptr<AgentClient>* out);
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // All the agent's properties, in one org.freedesktop.DBus.Properties.GetAll call.
  [[nodiscard]] CallResult properties(AgentProperties* out);
  [[nodiscard]] CallResult writers(std::vector<Writer>* out);
  // TestSnapshot(hold_usec); waits for the reply for the hold and two minutes more.
  [[nodiscard]] CallResult test_snapshot(uint64_t hold_usec, std::string* result, std::vector<Step>* steps);
  [[nodiscard]] CallResult thaw(std::string* done);

  // Installs the matches for PhaseChanged, TransactionFinished and PropertiesChanged synchronously:
  // once it returns, the bus delivers every such signal the agent emits. The sink is called while
  // the connection is processed (attach it to an event loop with sd_bus_attach_event).
  [[nodiscard]] CallResult subscribe(EventSink sink);
  sd_bus* bus() const { return bus_; }

 private:
  explicit AgentClient(sd_bus* bus) : bus_(bus) {}
  struct MessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
  };
  using Message = std::unique_ptr<sd_bus_message, MessageUnref>;
  // Calls `method`; `append` adds the arguments.
  CallResult call(const char* interface, const char* method, uint64_t timeout_usec,
                  const std::function<int(sd_bus_message*)>& append, Message* reply);
  static int on_phase_changed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_transaction_finished(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_properties_changed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_disconnected(sd_bus_message* m, void* userdata, sd_bus_error* error);

  sd_bus* bus_;
  EventSink sink_;
};

}  // namespace hvvss::ctl
