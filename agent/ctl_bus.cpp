#include "agent/ctl_bus.h"

#include <fmt/format.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hvvss::ctl {
namespace {

constexpr const char* kPropertiesInterface = "org.freedesktop.DBus.Properties";
// How long TestSnapshot may take beyond its hold: three reply budgets and more.
constexpr uint64_t kTestSnapshotSlackUsec = 120 * 1000000ull;

// A local failure (errno `r`) as sd-bus names it, with `what` in front of its message.
BusError local_error(int r, std::string_view what) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_error_set_errno(&error, r);
  BusError out{error.name ? error.name : "", fmt::format("{}: {}", what, std::strerror(-r))};
  sd_bus_error_free(&error);
  return out;
}

// sd_bus_call's failure: the error reply, or the local failure `r` when there was none.
BusError call_error(const sd_bus_error& error, int r, std::string_view method) {
  if (sd_bus_error_is_set(&error)) return {error.name, error.message ? error.message : ""};
  return local_error(r, fmt::format("{} failed", method));
}

// An array of `contents`, each element read (and stored) by `read_one`, which returns what
// sd_bus_message_read returns: 0 after the last element.
template <typename ReadOne>
int read_array(sd_bus_message* m, const char* contents, ReadOne read_one) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, contents);
  while (r > 0) r = read_one();
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

int read_steps(sd_bus_message* m, std::vector<Step>* out) {
  return read_array(m, "(ssst)", [m, out] {
    const char *participant, *phase, *outcome;
    uint64_t usec = 0;
    int r = sd_bus_message_read(m, "(ssst)", &participant, &phase, &outcome, &usec);
    if (r > 0) out->push_back({participant, phase, outcome, usec});
    return r;
  });
}

int read_writers(sd_bus_message* m, std::vector<Writer>* out) {
  return read_array(m, "(ssob)", [m, out] {
    const char *name, *owner, *object;
    int required = 0;
    int r = sd_bus_message_read(m, "(ssob)", &name, &owner, &object, &required);
    if (r > 0) out->push_back({name, owner, object, required != 0});
    return r;
  });
}

// One property's variant, stored in `out` if the agent has such a property; skipped otherwise.
int read_property(sd_bus_message* m, std::string_view name, AgentProperties* out) {
  const char* text = nullptr;
  uint64_t number = 0;
  int r = 0;
  if (name == "State") {
    if ((r = sd_bus_message_read(m, "v", "s", &text)) >= 0) out->state = text;
  } else if (name == "FrozenSinceUSec") {
    if ((r = sd_bus_message_read(m, "v", "t", &number)) >= 0) out->frozen_since_usec = number;
  } else if (name == "TransactionId") {
    if ((r = sd_bus_message_read(m, "v", "t", &number)) >= 0) out->transaction_id = number;
  } else if (name == "LastTransaction") {
    const char *op, *result;
    uint64_t usec = 0;
    if ((r = sd_bus_message_read(m, "v", "(tsst)", &number, &op, &result, &usec)) >= 0)
      out->last_transaction = TransactionSummary{number, op, result, usec};
  } else if (name == "LastTransactionSteps") {
    std::vector<Step> steps;
    if ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, "a(ssst)")) < 0) return r;
    if ((r = read_steps(m, &steps)) < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) >= 0) out->last_transaction_steps = std::move(steps);
  } else {
    r = sd_bus_message_skip(m, "v");
  }
  return r;
}

// a{sv}
int read_properties(sd_bus_message* m, AgentProperties* out) {
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
    const char* name = nullptr;
    if ((r = sd_bus_message_read(m, "s", &name)) < 0) return r;
    if ((r = read_property(m, name, out)) < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

// A signal that does not match the contract is reported and otherwise ignored.
int malformed(int r, const char* signal) {
  std::fprintf(stderr, "hv-vssctl: ignoring a malformed %s signal: %s\n", signal, std::strerror(-r));
  return 0;
}

}  // namespace

CallResult AgentClient::connect(std::unique_ptr<AgentClient>* out) {
  sd_bus* bus = nullptr;
  if (int r = sd_bus_open_system(&bus); r < 0) {
    const char* address = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    return BusError{"org.freedesktop.DBus.Error.NoServer",
                    fmt::format("{}: {}", address ? address : "/run/dbus/system_bus_socket", std::strerror(-r))};
  }
  out->reset(new AgentClient(bus));
  return std::nullopt;
}

AgentClient::~AgentClient() { sd_bus_flush_close_unref(bus_); }

CallResult AgentClient::call(const char* interface, const char* method, uint64_t timeout_usec,
                             const std::function<int(sd_bus_message*)>& append, Message* reply) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &raw, kBusName, kBusPath, interface, method);
  Message request(raw);
  if (r >= 0 && append) r = append(request.get());
  if (r < 0) return local_error(r, fmt::format("cannot build the {} call", method));
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* answer = nullptr;
  r = sd_bus_call(bus_, request.get(), timeout_usec, &error, &answer);
  reply->reset(answer);
  if (r >= 0) return std::nullopt;
  BusError failure = call_error(error, r, method);
  sd_bus_error_free(&error);
  return failure;
}

CallResult AgentClient::properties(AgentProperties* out) {
  Message reply;
  auto append = [](sd_bus_message* m) { return sd_bus_message_append(m, "s", kBusInterface); };
  if (auto e = call(kPropertiesInterface, "GetAll", 0, append, &reply)) return e;
  if (int r = read_properties(reply.get(), out); r < 0) return local_error(r, "cannot read the agent's properties");
  return std::nullopt;
}

CallResult AgentClient::writers(std::vector<Writer>* out) {
  Message reply;
  if (auto e = call(kBusInterface, "ListWriters", 0, nullptr, &reply)) return e;
  if (int r = read_writers(reply.get(), out); r < 0) return local_error(r, "cannot read ListWriters' reply");
  return std::nullopt;
}

CallResult AgentClient::test_snapshot(uint64_t hold_usec, std::string* result, std::vector<Step>* steps) {
  Message reply;
  auto append = [hold_usec](sd_bus_message* m) { return sd_bus_message_append(m, "t", hold_usec); };
  if (auto e = call(kBusInterface, "TestSnapshot", hold_usec + kTestSnapshotSlackUsec, append, &reply)) return e;
  const char* text = nullptr;
  int r = sd_bus_message_read(reply.get(), "s", &text);
  if (r >= 0) r = read_steps(reply.get(), steps);
  if (r < 0) return local_error(r, "cannot read TestSnapshot's reply");
  *result = text;
  return std::nullopt;
}

CallResult AgentClient::thaw(std::string* done) {
  Message reply;
  if (auto e = call(kBusInterface, "Thaw", 0, nullptr, &reply)) return e;
  const char* text = nullptr;
  if (int r = sd_bus_message_read(reply.get(), "s", &text); r < 0) return local_error(r, "cannot read Thaw's reply");
  *done = text;
  return std::nullopt;
}

CallResult AgentClient::subscribe(EventSink sink) {
  sink_ = std::move(sink);
  // The local Disconnected signal, which sd-bus synthesizes when the connection drops.
  int r = sd_bus_match_signal(bus_, nullptr, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                              "org.freedesktop.DBus.Local", "Disconnected", &on_disconnected, this);
  if (r >= 0)
    r = sd_bus_match_signal(bus_, nullptr, kBusName, kBusPath, kBusInterface, "PhaseChanged", &on_phase_changed, this);
  if (r >= 0)
    r = sd_bus_match_signal(bus_, nullptr, kBusName, kBusPath, kBusInterface, "TransactionFinished",
                            &on_transaction_finished, this);
  if (r >= 0)
    r = sd_bus_match_signal(bus_, nullptr, kBusName, kBusPath, kPropertiesInterface, "PropertiesChanged",
                            &on_properties_changed, this);
  if (r < 0) return local_error(r, "cannot subscribe to the agent's signals");
  return std::nullopt;
}

int AgentClient::on_phase_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  PhaseChanged event;
  const char *op, *phase;
  if (int r = sd_bus_message_read(m, "tss", &event.transaction, &op, &phase); r < 0)
    return malformed(r, "PhaseChanged");
  event.op = op;
  event.phase = phase;
  static_cast<AgentClient*>(userdata)->sink_.phase(event);
  return 0;
}

int AgentClient::on_transaction_finished(sd_bus_message* m, void* userdata, sd_bus_error*) {
  TransactionFinished event;
  const char* result;
  if (int r = sd_bus_message_read(m, "ts", &event.transaction, &result); r < 0)
    return malformed(r, "TransactionFinished");
  event.result = result;
  static_cast<AgentClient*>(userdata)->sink_.finished(event);
  return 0;
}

int AgentClient::on_properties_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  const char* interface = nullptr;
  int r = sd_bus_message_read(m, "s", &interface);
  if (r < 0) return malformed(r, "PropertiesChanged");
  if (std::strcmp(interface, kBusInterface) != 0) return 0;
  PropertiesChanged event;
  char** invalidated = nullptr;
  if ((r = read_properties(m, &event.changed)) >= 0) r = sd_bus_message_read_strv(m, &invalidated);
  if (r < 0) return malformed(r, "PropertiesChanged");
  for (char** name = invalidated; name && *name; ++name) {
    event.invalidated.emplace_back(*name);
    std::free(*name);
  }
  std::free(invalidated);
  static_cast<AgentClient*>(userdata)->sink_.properties(event);
  return 0;
}

int AgentClient::on_disconnected(sd_bus_message*, void* userdata, sd_bus_error*) {
  static_cast<AgentClient*>(userdata)->sink_.disconnected();
  return 0;
}

}  // namespace hvvss::ctl
