// Keeps the writer registered with whichever hv-vss-agent owns io.github.hvvss.Agent1. A
// registration lives as long as both connections, so the writer follows the name: it watches
// NameOwnerChanged (the match is in place before it asks NameHasOwner, so no arrival falls
// between the two), waits while nobody owns the name and calls RegisterWriter each time an agent
// takes it. A refusal (AccessDenied, WriterExists, InvalidArgs, ...) is fatal: the loop exits 1.
#pragma once

#include "agent/status.h"

#include <systemd/sd-bus.h>
#include <cstdint>
#include <optional>
#include <string>

namespace hvvss::writer {

struct Registration {
  std::string object;
  std::string name;
  bool required = true;
  std::optional<uint64_t> timeout_usec;  // the agent's default when unset
};

class AgentRegistration {
 public:
  AgentRegistration(sd_bus* bus, Registration registration) : bus_(bus), registration_(std::move(registration)) {}
  ~AgentRegistration();
  AgentRegistration(const AgentRegistration&) = delete;
  AgentRegistration& operator=(const AgentRegistration&) = delete;

  // Starts following the agent's name; everything else happens on the bus's event loop.
  Status start();

 private:
  static int on_match_installed(sd_bus_message* reply, void* userdata, sd_bus_error* error);
  static int on_has_owner(sd_bus_message* reply, void* userdata, sd_bus_error* error);
  static int on_owner_changed(sd_bus_message* signal, void* userdata, sd_bus_error* error);
  static int on_registered(sd_bus_message* reply, void* userdata, sd_bus_error* error);
  void agent_appeared();
  void agent_gone();
  void fail(std::string_view what, std::string_view message);

  sd_bus* bus_;
  Registration registration_;
  bool agent_present_ = false;
  sd_bus_slot* match_ = nullptr;
  sd_bus_slot* has_owner_call_ = nullptr;
  sd_bus_slot* register_call_ = nullptr;
};

}  // namespace hvvss::writer
