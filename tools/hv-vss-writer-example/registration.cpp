#include "tools/hv-vss-writer-example/registration.h"

#include "tools/hv-vss-writer-example/events.h"

#include <systemd/sd-event.h>
#include <cstdlib>
#include <cstring>

namespace hvvss::writer {
namespace {

constexpr const char* kAgent = "io.github.hvvss.Agent1";
constexpr const char* kAgentPath = "/io/github/hvvss/Agent1";
constexpr const char* kOwnerChanged =
    "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged',arg0='io.github.hvvss.Agent1'";

// Errors that mean the agent left before it answered: the next one to appear is registered with.
bool agent_left(const sd_bus_error* error) {
  return sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                SD_BUS_ERROR_NO_REPLY);
}

}  // namespace

AgentRegistration::~AgentRegistration() {
  sd_bus_slot_unref(register_call_);
  sd_bus_slot_unref(has_owner_call_);
  sd_bus_slot_unref(match_);
}

Status AgentRegistration::start() {
  if (int r = sd_bus_add_match_async(bus_, &match_, kOwnerChanged, &AgentRegistration::on_owner_changed,
                                     &AgentRegistration::on_match_installed, this);
      r < 0)
    return Status::from_errno(-r, "cannot watch the agent's bus name");
  return {};
}

int AgentRegistration::on_match_installed(sd_bus_message* reply, void* userdata, sd_bus_error*) {
  auto* self = static_cast<AgentRegistration*>(userdata);
  if (const sd_bus_error* e = sd_bus_message_get_error(reply)) {
    self->fail(e->name, e->message);
    return 0;
  }
  int r = sd_bus_call_method_async(self->bus_, &self->has_owner_call_, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus", "NameHasOwner", &AgentRegistration::on_has_owner, self, "s",
                                   kAgent);
  if (r < 0) self->fail("cannot ask for the agent's bus name", std::strerror(-r));
  return 0;
}

int AgentRegistration::on_has_owner(sd_bus_message* reply, void* userdata, sd_bus_error*) {
  auto* self = static_cast<AgentRegistration*>(userdata);
  self->has_owner_call_ = sd_bus_slot_unref(self->has_owner_call_);
  int has_owner = 0;
  if (const sd_bus_error* e = sd_bus_message_get_error(reply)) {
    self->fail(e->name, e->message);
  } else if (int r = sd_bus_message_read(reply, "b", &has_owner); r < 0) {
    self->fail("NameHasOwner", std::strerror(-r));
  } else if (self->agent_present_) {
    // NameOwnerChanged came first and was handled: it told the same.
  } else if (has_owner) {
    self->agent_appeared();
  } else {
    print_event("waiting", {{"agent", kAgent}});
  }
  return 0;
}

int AgentRegistration::on_owner_changed(sd_bus_message* signal, void* userdata, sd_bus_error*) {
  auto* self = static_cast<AgentRegistration*>(userdata);
  const char *name, *old_owner, *new_owner;
  if (int r = sd_bus_message_read(signal, "sss", &name, &old_owner, &new_owner); r < 0) {
    self->fail("NameOwnerChanged", std::strerror(-r));
    return 0;
  }
  if (*old_owner && self->agent_present_) self->agent_gone();
  if (*new_owner) self->agent_appeared();
  return 0;
}

void AgentRegistration::agent_appeared() {
  agent_present_ = true;
  register_call_ = sd_bus_slot_unref(register_call_);
  sd_bus_message* call = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &call, kAgent, kAgentPath, kAgent, "RegisterWriter");
  if (r >= 0) r = sd_bus_message_append(call, "os", registration_.object.c_str(), registration_.name.c_str());
  if (r >= 0) r = sd_bus_message_open_container(call, 'a', "{sv}");
  if (r >= 0) r = sd_bus_message_append(call, "{sv}", "Required", "b", registration_.required);
  if (r >= 0 && registration_.timeout_usec)
    r = sd_bus_message_append(call, "{sv}", "TimeoutUSec", "t", *registration_.timeout_usec);
  if (r >= 0) r = sd_bus_message_close_container(call);
  if (r >= 0) r = sd_bus_call_async(bus_, &register_call_, call, &AgentRegistration::on_registered, this, 0);
  sd_bus_message_unref(call);
  if (r < 0) fail("cannot call RegisterWriter", std::strerror(-r));
}

void AgentRegistration::agent_gone() {
  agent_present_ = false;
  register_call_ = sd_bus_slot_unref(register_call_);  // a RegisterWriter still on its way is moot
  print_event("agent-gone");
}

int AgentRegistration::on_registered(sd_bus_message* reply, void* userdata, sd_bus_error*) {
  auto* self = static_cast<AgentRegistration*>(userdata);
  self->register_call_ = sd_bus_slot_unref(self->register_call_);
  const sd_bus_error* e = sd_bus_message_get_error(reply);
  if (!e) {
    print_event("registered", {{"name", self->registration_.name}, {"object", self->registration_.object}});
  } else if (agent_left(e)) {
    print_event("error", {{"message", std::string(e->name) + ": " + e->message + " (waiting for the agent)"}});
  } else {
    self->fail(e->name, e->message);
  }
  return 0;
}

void AgentRegistration::fail(std::string_view what, std::string_view message) {
  print_fatal(what, message);
  if (int r = sd_event_exit(sd_bus_get_event(bus_), 1); r < 0) std::exit(1);
}

}  // namespace hvvss::writer
