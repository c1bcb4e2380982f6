// The agent's D-Bus service: io.github.hvvss.Agent1 at /io/github/hvvss/Agent1 on the system bus
// (agent/dbus/io.github.hvvss.Agent1.xml is the contract). Its properties and signals follow the
// engine; its methods are the writer registry's, test snapshots and the emergency thaw. It runs on
// the agent's sd-event loop and never blocks it: the name, the caller's credentials and every long
// call are handled as messages that complete later. Who may call what is checked from the
// caller's credentials, whatever the bus policy allows. Without a bus the agent goes on serving
// the host with the other participants, and connects as soon as the bus (re)appears.
#pragma once

#include "agent/bus_user.h"
#include "agent/dbus/names.h"
#include "agent/event_loop.h"
#include "agent/steps.h"
#include "agent/test_snapshot.h"
#include "agent/transaction.h"
#include "agent/writer_registry.h"

#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hvvss {

class BusService final : public EngineObserver {
 public:
  explicit BusService(sd_event* loop);
  ~BusService() override;
  BusService(const BusService&) = delete;
  BusService& operator=(const BusService&) = delete;

  // The writers plugin's registry, and the users besides root who may register writers. The
  // registry is a bus user too.
  void set_writers(WriterRegistry* registry, std::vector<uid_t> writer_uids);
  // `user` is handed the connection whenever the agent serves on one; it must outlive the service.
  void add_user(BusUser* user);
  // Serves `engine` from now on: connects now, and again whenever the bus comes back.
  // `max_hold` bounds a test snapshot's hold (it must end before the automatic thaw).
  void start(TransactionEngine* engine, std::chrono::milliseconds max_hold);

  enum class Method { RegisterWriter, UnregisterWriter, TestSnapshot, Thaw };

 private:
  struct Authorization;  // a call waiting for its caller's uid

  void connect();
  // When to try again: once the bus socket (re)appears (the bus is not there), or after a backoff
  // (the bus is there but refused us, e.g. the name is taken).
  enum class Retry { WhenTheBusIsBack, Later };
  void connection_failed(const Status& why, Retry retry = Retry::WhenTheBusIsBack);
  void on_name(sd_bus_message* reply);
  void drop_connection();
  void schedule_reconnect(Retry retry);
  bool watch_socket();
  static int on_message(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_socket_event(sd_event_source* source, const struct inotify_event* event, void* userdata);

  // Asks the bus for the caller's uid, then runs the method (or refuses it).
  int authorize(sd_bus_message* call, Method method);
  void on_caller_uid(Authorization* auth, sd_bus_message* reply);
  void run(Method method, sd_bus_message* call, uid_t uid);
  Status register_writer(sd_bus_message* call);
  Status unregister_writer(sd_bus_message* call, uid_t uid);
  Status test_snapshot(sd_bus_message* call);
  void thaw(sd_bus_message* call, uid_t uid);

  friend struct BusVtable;  // the vtable's C callbacks
  void emit_changed(std::initializer_list<const char*> properties);
  void update_frozen_since();

  void request_received(const EventContext& at) override;
  void state_changed(const EventContext& at) override;
  void participant_finished(const EventContext& at, std::string_view participant, Action action,
                            const Outcome& outcome) override;
  void transaction_finished(const EventContext& at, HvStatus status, Clock::duration took) override;

  sd_event* loop_;
  TransactionEngine* engine_ = nullptr;
  std::unique_ptr<TestSnapshot> test_;
  WriterRegistry* writers_ = nullptr;
  std::vector<BusUser*> users_;
  std::vector<uid_t> writer_uids_;
  std::chrono::milliseconds max_hold_{};

  sd_bus* bus_ = nullptr;
  sd_bus_slot* object_slot_ = nullptr;
  sd_bus_slot* filter_slot_ = nullptr;
  sd_bus_slot* name_slot_ = nullptr;
  bool serving_ = false;           // the name is ours
  bool said_unavailable_ = false;  // "no bus" is said once, until it is back
  Timer reconnect_timer_;
  std::chrono::milliseconds backoff_;
  sd_event_source* socket_watch_ = nullptr;
  std::list<std::unique_ptr<Authorization>> authorizations_;

  uint64_t txn_ = 0;                // TransactionId, whose steps steps_ holds
  uint64_t frozen_since_usec_ = 0;  // FrozenSinceUSec
  std::vector<Step> steps_;         // the current transaction's steps so far
  struct Last {
    uint64_t id = 0;
    std::string op;
    std::string result;
    uint64_t usec = 0;
    std::vector<Step> steps;
  } last_;
};

}  // namespace hvvss
