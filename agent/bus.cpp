#include "agent/bus.h"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace hvvss {

namespace {

constexpr std::chrono::milliseconds kFirstRetry{1000};
constexpr std::chrono::milliseconds kLastRetry{60000};
// After the bus socket appears, a short pause lets the daemon get from bind() to listen().
constexpr std::chrono::milliseconds kSettle{100};
constexpr std::string_view kDefaultAddress = "unix:path=/run/dbus/system_bus_socket";

const char* method_name(BusService::Method method) {
  switch (method) {
    case BusService::Method::RegisterWriter: return "RegisterWriter";
    case BusService::Method::UnregisterWriter: return "UnregisterWriter";
    case BusService::Method::TestSnapshot: return "TestSnapshot";
    case BusService::Method::Thaw: return "Thaw";
  }
  return "?";
}

const char* error_name(Status::Code code) {
  switch (code) {
    case Status::Code::InvalidArgument: return SD_BUS_ERROR_INVALID_ARGS;
    case Status::Code::AccessDenied: return SD_BUS_ERROR_ACCESS_DENIED;
    case Status::Code::Exists: return "io.github.hvvss.Error.WriterExists";
    case Status::Code::NotFound: return "io.github.hvvss.Error.NoSuchWriter";
    case Status::Code::Busy: return "io.github.hvvss.Error.Busy";
    case Status::Code::LimitExceeded: return SD_BUS_ERROR_LIMITS_EXCEEDED;
    case Status::Code::Error: break;
  }
  return SD_BUS_ERROR_FAILED;
}

uint64_t usec(Clock::duration d) {
  return static_cast<uint64_t>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

uint64_t realtime_usec() { return usec(std::chrono::system_clock::now().time_since_epoch()); }

// A reference to a message that a later reply needs.
using MessagePtr = std::shared_ptr<sd_bus_message>;
MessagePtr hold(sd_bus_message* m) { return MessagePtr(sd_bus_message_ref(m), sd_bus_message_unref); }

void log_send_error(int r, const char* what) {
  if (r < 0) spdlog::debug("D-Bus: cannot send {}: {}", what, std::strerror(-r));
}

void reply_error(sd_bus_message* call, const Status& s) {
  log_send_error(sd_bus_reply_method_errorf(call, error_name(s.code()), "%s", s.message().c_str()), "an error reply");
}

void reply_ok(sd_bus_message* call) { log_send_error(sd_bus_reply_method_return(call, nullptr), "a reply"); }

int append_steps(sd_bus_message* m, const std::vector<Step>& steps) {
  int r = sd_bus_message_open_container(m, 'a', "(ssst)");
  for (const Step& step : steps) {
    if (r < 0) break;
    r = sd_bus_message_append(m, "(ssst)", step.participant.c_str(), std::string(action_name(step.action)).c_str(),
                              std::string(result_name(step.result)).c_str(), usec(step.took));
  }
  if (r >= 0) r = sd_bus_message_close_container(m);
  return r;
}

// The unix socket path of the system bus address, if it is a plain one.
std::optional<std::filesystem::path> socket_path() {
  const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
  std::string_view address = env && *env ? env : kDefaultAddress;
  address = address.substr(0, address.find(';'));
  constexpr std::string_view kPrefix = "unix:path=";
  if (address.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view path = address.substr(kPrefix.size());
  path = path.substr(0, path.find(','));
  if (path.empty() || path.find('%') != std::string_view::npos) return std::nullopt;
  return std::filesystem::path(path);
}

}  // namespace

// A method call waiting for the bus to say who sent it.
struct BusService::Authorization {
  Authorization(BusService* self, Method method, MessagePtr call) : self(self), method(method), call(std::move(call)) {}
  ~Authorization() { sd_bus_slot_unref(slot); }
  Authorization(const Authorization&) = delete;
  Authorization& operator=(const Authorization&) = delete;
  BusService* self;
  Method method;
  MessagePtr call;
  sd_bus_slot* slot = nullptr;
};

// The C side of the vtable.
struct BusVtable {
  static BusService* self(void* userdata) { return static_cast<BusService*>(userdata); }

  static int state(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                   sd_bus_error*) {
    const TransactionEngine* engine = self(userdata)->engine_;
    return sd_bus_message_append(reply, "s", std::string(state_name(engine ? engine->state() : State::Idle)).c_str());
  }
  static int frozen_since(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                          sd_bus_error*) {
    return sd_bus_message_append(reply, "t", self(userdata)->frozen_since_usec_);
  }
  static int transaction_id(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                            sd_bus_error*) {
    return sd_bus_message_append(reply, "t", self(userdata)->txn_);
  }
  static int last_transaction(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                              sd_bus_error*) {
    const auto& last = self(userdata)->last_;
    return sd_bus_message_append(reply, "(tsst)", last.id, last.op.c_str(), last.result.c_str(), last.usec);
  }
  static int last_steps(sd_bus*, const char*, const char*, const char*, sd_bus_message* reply, void* userdata,
                        sd_bus_error*) {
    return append_steps(reply, self(userdata)->last_.steps);
  }

  static int register_writer(sd_bus_message* m, void* userdata, sd_bus_error*) {
    return self(userdata)->authorize(m, BusService::Method::RegisterWriter);
  }
  static int unregister_writer(sd_bus_message* m, void* userdata, sd_bus_error*) {
    return self(userdata)->authorize(m, BusService::Method::UnregisterWriter);
  }
  static int test_snapshot(sd_bus_message* m, void* userdata, sd_bus_error*) {
    return self(userdata)->authorize(m, BusService::Method::TestSnapshot);
  }
  static int thaw(sd_bus_message* m, void* userdata, sd_bus_error*) {
    return self(userdata)->authorize(m, BusService::Method::Thaw);
  }
  static int list_writers(sd_bus_message* m, void* userdata, sd_bus_error*) {
    BusService* service = self(userdata);
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r >= 0) r = sd_bus_message_open_container(reply, 'a', "(ssob)");
    if (service->writers_) {
      for (const WriterInfo& w : service->writers_->list()) {
        if (r < 0) break;
        r = sd_bus_message_append(reply, "(ssob)", w.name.c_str(), w.owner.c_str(), w.object.c_str(),
                                  static_cast<int>(w.required));
      }
    }
    if (r >= 0) r = sd_bus_message_close_container(reply);
    if (r >= 0) r = sd_bus_send(nullptr, reply, nullptr);
    sd_bus_message_unref(reply);
    return r;
  }
};

namespace {
// Every method is marked unprivileged so that sd-bus never checks the caller itself (with a
// blocking call to the bus): the service checks, without blocking, in authorize().
const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("State", "s", BusVtable::state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("FrozenSinceUSec", "t", BusVtable::frozen_since, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("TransactionId", "t", BusVtable::transaction_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastTransaction", "(tsst)", BusVtable::last_transaction, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastTransactionSteps", "a(ssst)", BusVtable::last_steps, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD_WITH_ARGS("RegisterWriter", SD_BUS_ARGS("o", object, "s", name, "a{sv}", options), SD_BUS_NO_RESULT,
                            BusVtable::register_writer, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("UnregisterWriter", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, BusVtable::unregister_writer,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("ListWriters", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssob)", writers), BusVtable::list_writers,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("TestSnapshot", SD_BUS_ARGS("t", hold_usec), SD_BUS_RESULT("s", result, "a(ssst)", steps),
                            BusVtable::test_snapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_ARGS("Thaw", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", done), BusVtable::thaw,
                            SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_ARGS("PhaseChanged", SD_BUS_ARGS("t", transaction, "s", op, "s", phase), 0),
    SD_BUS_SIGNAL_WITH_ARGS("TransactionFinished", SD_BUS_ARGS("t", transaction, "s", result), 0),
    SD_BUS_VTABLE_END};
}  // namespace

BusService::BusService(sd_event* loop)
    : loop_(loop), reconnect_timer_(loop, [this] { connect(); }), backoff_(kFirstRetry) {}

BusService::~BusService() {
  drop_connection();
  sd_event_source_disable_unref(socket_watch_);
}

void BusService::set_writers(WriterRegistry* registry, std::vector<uid_t> writer_uids) {
  writers_ = registry;
  writer_uids_ = std::move(writer_uids);
  add_user(registry);
}

void BusService::add_user(BusUser* user) {
  users_.push_back(user);
  if (serving_) user->connected(bus_);
}

void BusService::start(TransactionEngine* engine, std::chrono::milliseconds max_hold) {
  engine_ = engine;
  max_hold_ = max_hold;
  test_ = std::make_unique<TestSnapshot>(loop_, *engine);
  engine->add_observer(test_.get());
  engine->add_observer(this);
  txn_ = engine->transaction_id();
  connect();
}

void BusService::connect() {
  reconnect_timer_.disarm();
  drop_connection();
  sd_bus* bus = nullptr;
  int r = sd_bus_open_system(&bus);
  const char* step = "cannot connect to the system bus";
  if (r >= 0) {
    bus_ = bus;
    step = "cannot attach the bus to the event loop";
    r = sd_bus_attach_event(bus, loop_, SD_EVENT_PRIORITY_NORMAL);
  }
  if (r >= 0) {
    step = "cannot watch the bus connection";
    r = sd_bus_add_filter(bus, &filter_slot_, &BusService::on_message, this);
  }
  if (r >= 0) {
    step = "cannot publish the agent's object";
    r = sd_bus_add_object_vtable(bus, &object_slot_, kBusPath, kBusInterface, kVtable, this);
  }
  if (r >= 0) {
    step = "cannot ask for the bus name";
    r = sd_bus_request_name_async(
        bus, &name_slot_, kBusName, 0,
        [](sd_bus_message* m, void* userdata, sd_bus_error*) {
          static_cast<BusService*>(userdata)->on_name(m);
          return 0;
        },
        this);
  }
  if (r < 0) connection_failed(Status::from_errno(-r, step));
}

void BusService::on_name(sd_bus_message* reply) {
  name_slot_ = sd_bus_slot_unref(name_slot_);
  if (const sd_bus_error* e = sd_bus_message_get_error(reply)) {
    // Not from inside the connection's own callback: the connection is closed and freed.
    Status why = Status::errorf("cannot own {}: {}", kBusName, e->message ? e->message : e->name);
    if (Status s = post(loop_, [this, why] { connection_failed(why, Retry::Later); }); !s)
      spdlog::error("D-Bus: {}", s.message());
    return;
  }
  serving_ = true;
  backoff_ = kFirstRetry;
  said_unavailable_ = false;
  spdlog::info("D-Bus: serving {} on the system bus", kBusName);
  for (BusUser* user : users_) user->connected(bus_);
}

void BusService::connection_failed(const Status& why, Retry retry) {
  drop_connection();
  if (!said_unavailable_) {
    spdlog::warn("D-Bus: {}; serving the host without applications until the bus is back", why.message());
    said_unavailable_ = true;
  } else {
    spdlog::debug("D-Bus: {}", why.message());
  }
  schedule_reconnect(retry);
}

void BusService::drop_connection() {
  if (!bus_) return;
  if (serving_)
    for (BusUser* user : users_) user->connected(nullptr);
  serving_ = false;
  authorizations_.clear();  // their slots go with the bus; their calls are never answered
  name_slot_ = sd_bus_slot_unref(name_slot_);
  object_slot_ = sd_bus_slot_unref(object_slot_);
  filter_slot_ = sd_bus_slot_unref(filter_slot_);
  bus_ = sd_bus_close_unref(bus_);
}

// Retries when the bus socket (re)appears if it can watch it, else with backoff: no periodic
// wake-up while there is no bus. A socket that is there already (a bus restarted before the watch
// began, or one that refused us) is tried again with backoff.
void BusService::schedule_reconnect(Retry retry) {
  if (retry == Retry::WhenTheBusIsBack && watch_socket()) {
    std::error_code ec;
    if (!std::filesystem::exists(*socket_path(), ec)) return;
  }
  if (Status s = reconnect_timer_.arm(Clock::now() + backoff_); !s) {
    spdlog::error("D-Bus: {}: not reconnecting", s.message());
    return;
  }
  backoff_ = std::min(backoff_ * 2, kLastRetry);
}

bool BusService::watch_socket() {
  if (socket_watch_) return true;
  std::optional<std::filesystem::path> path = socket_path();
  if (!path) return false;
  int r = sd_event_add_inotify(loop_, &socket_watch_, path->parent_path().c_str(), IN_CREATE | IN_MOVED_TO | IN_ATTRIB,
                               &BusService::on_socket_event, this);
  if (r < 0) {
    spdlog::debug("D-Bus: cannot watch {}: {}", path->parent_path().string(), std::strerror(-r));
    socket_watch_ = nullptr;
    return false;
  }
  return true;
}

int BusService::on_socket_event(sd_event_source*, const struct inotify_event* event, void* userdata) {
  auto* self = static_cast<BusService*>(userdata);
  std::optional<std::filesystem::path> path = socket_path();
  if (self->bus_ || !path || event->len == 0 || path->filename() != event->name) return 0;
  if (Status s = self->reconnect_timer_.arm(Clock::now() + kSettle); !s) spdlog::error("D-Bus: {}", s.message());
  return 0;
}

int BusService::on_message(sd_bus_message* m, void* userdata, sd_bus_error*) {
  if (!sd_bus_message_is_signal(m, "org.freedesktop.DBus.Local", "Disconnected")) return 0;
  auto* self = static_cast<BusService*>(userdata);
  if (Status s = post(self->loop_, [self] { self->connection_failed(Status::error("the system bus went away")); }); !s)
    spdlog::error("D-Bus: {}", s.message());
  return 0;
}

int BusService::authorize(sd_bus_message* call, Method method) {
  auto auth = std::make_unique<Authorization>(this, method, hold(call));
  Authorization* a = auth.get();
  int r = sd_bus_call_method_async(
      bus_, &a->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
      [](sd_bus_message* reply, void* userdata, sd_bus_error*) {
        auto* a = static_cast<Authorization*>(userdata);
        a->self->on_caller_uid(a, reply);
        return 0;
      },
      a, "s", sd_bus_message_get_sender(call));
  if (r < 0) return r;  // sd-bus answers the call with this error
  authorizations_.push_back(std::move(auth));
  return 1;
}

void BusService::on_caller_uid(Authorization* a, sd_bus_message* reply) {
  MessagePtr call = std::move(a->call);
  Method method = a->method;
  authorizations_.remove_if([a](const auto& p) { return p.get() == a; });
  uint32_t uid = 0;
  int r = sd_bus_message_get_error(reply) ? -sd_bus_message_get_errno(reply) : sd_bus_message_read(reply, "u", &uid);
  if (r < 0) {
    reply_error(call.get(), Status::from_errno(-r, "cannot tell who is calling"));
    return;
  }
  bool root = uid == 0;
  bool writer = std::find(writer_uids_.begin(), writer_uids_.end(), uid) != writer_uids_.end();
  bool allowed = root || (writer && (method == Method::RegisterWriter || method == Method::UnregisterWriter));
  if (!allowed) {
    spdlog::warn("D-Bus: uid {} ({}) may not call {}: access denied", uid, sd_bus_message_get_sender(call.get()),
                 method_name(method));
    reply_error(call.get(), Status::refusal(Status::Code::AccessDenied,
                                            fmt::format("uid {} may not call {}", uid, method_name(method))));
    return;
  }
  run(method, call.get(), uid);
}

void BusService::run(Method method, sd_bus_message* call, uid_t uid) {
  Status s;
  switch (method) {
    case Method::RegisterWriter: s = register_writer(call); break;
    case Method::UnregisterWriter: s = unregister_writer(call, uid); break;
    case Method::TestSnapshot: s = test_snapshot(call); break;
    case Method::Thaw: thaw(call, uid); return;
  }
  if (!s) {
    spdlog::warn("D-Bus: {} by uid {} ({}) refused: {}", method_name(method), uid, sd_bus_message_get_sender(call),
                 s.message());
    reply_error(call, s);
  }
}

Status BusService::register_writer(sd_bus_message* call) {
  if (!writers_) return Status::error("this agent has no writers plugin");
  const char* object = nullptr;
  const char* name = nullptr;
  WriterInfo w;
  int r = sd_bus_message_read(call, "os", &object, &name);
  if (r >= 0) r = sd_bus_message_enter_container(call, 'a', "{sv}");
  while (r >= 0 && (r = sd_bus_message_enter_container(call, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read(call, "s", &key)) < 0) break;
    if (std::strcmp(key, "Required") == 0) {
      int required = 1;
      r = sd_bus_message_read(call, "v", "b", &required);
      w.required = required != 0;
    } else if (std::strcmp(key, "TimeoutUSec") == 0) {
      uint64_t timeout = 0;
      r = sd_bus_message_read(call, "v", "t", &timeout);
      if (r >= 0 && timeout == 0)
        return Status::refusal(Status::Code::InvalidArgument, "option TimeoutUSec must be positive");
      w.timeout = std::chrono::microseconds(std::min<uint64_t>(timeout, INT64_MAX));
    } else {
      return Status::refusal(Status::Code::InvalidArgument,
                             fmt::format("unknown option \"{}\" (known: Required, TimeoutUSec)", key));
    }
    if (r >= 0) r = sd_bus_message_exit_container(call);
  }
  if (r >= 0) r = sd_bus_message_exit_container(call);
  if (r < 0) return Status::refusal(Status::Code::InvalidArgument, fmt::format("bad arguments: {}", std::strerror(-r)));
  w.name = name;
  w.object = object;
  w.owner = sd_bus_message_get_sender(call);
  if (Status s = writers_->add(w); !s) return s;
  spdlog::info("D-Bus: writer {} registered by {} at {} ({})", w.name, w.owner, w.object,
               w.required ? "required" : "optional");
  reply_ok(call);
  return {};
}

Status BusService::unregister_writer(sd_bus_message* call, uid_t uid) {
  if (!writers_) return Status::refusal(Status::Code::NotFound, "this agent has no writers plugin");
  const char* name = nullptr;
  if (int r = sd_bus_message_read(call, "s", &name); r < 0)
    return Status::refusal(Status::Code::InvalidArgument, fmt::format("bad arguments: {}", std::strerror(-r)));
  if (Status s = writers_->remove(name, sd_bus_message_get_sender(call), uid == 0); !s) return s;
  spdlog::info("D-Bus: writer {} unregistered by uid {}", name, uid);
  reply_ok(call);
  return {};
}

Status BusService::test_snapshot(sd_bus_message* call) {
  uint64_t hold_usec = 0;
  if (int r = sd_bus_message_read(call, "t", &hold_usec); r < 0)
    return Status::refusal(Status::Code::InvalidArgument, fmt::format("bad arguments: {}", std::strerror(-r)));
  auto max = std::chrono::duration_cast<std::chrono::microseconds>(max_hold_);
  if (hold_usec > static_cast<uint64_t>(max.count()))
    return Status::refusal(
        Status::Code::InvalidArgument,
        fmt::format("hold_usec must be at most {} µs (the automatic thaw would end it)", max.count()));
  MessagePtr held = hold(call);
  Status s = test_->start(std::chrono::microseconds(hold_usec),
                          [held = std::move(held)](HvStatus result, const std::vector<Step>& steps) {
                            sd_bus_message* reply = nullptr;
                            int r = sd_bus_message_new_method_return(held.get(), &reply);
                            if (r >= 0) r = sd_bus_message_append(reply, "s", std::string(status_name(result)).c_str());
                            if (r >= 0) r = append_steps(reply, steps);
                            if (r >= 0) r = sd_bus_send(nullptr, reply, nullptr);
                            log_send_error(r, "the test snapshot's reply");
                            sd_bus_message_unref(reply);
                          });
  if (s)
    spdlog::info("D-Bus: test snapshot started by {} (hold {} ms)", sd_bus_message_get_sender(call), hold_usec / 1000);
  return s;
}

void BusService::thaw(sd_bus_message* call, uid_t uid) {
  engine_->thaw_now(fmt::format("requested over D-Bus by uid {} ({})", uid, sd_bus_message_get_sender(call)),
                    [held = hold(call)](std::string said) {
                      spdlog::info("D-Bus: emergency thaw: {}", said);
                      log_send_error(sd_bus_reply_method_return(held.get(), "s", said.c_str()), "the thaw's reply");
                    });
}

void BusService::emit_changed(std::initializer_list<const char*> properties) {
  if (!serving_) return;
  std::vector<char*> names;
  for (const char* p : properties) names.push_back(const_cast<char*>(p));
  names.push_back(nullptr);
  log_send_error(sd_bus_emit_properties_changed_strv(bus_, kBusPath, kBusInterface, names.data()), "PropertiesChanged");
}

void BusService::update_frozen_since() {
  uint64_t since = !engine_->frozen() ? 0 : frozen_since_usec_ ? frozen_since_usec_ : realtime_usec();
  if (since == frozen_since_usec_) return;
  frozen_since_usec_ = since;
  emit_changed({"FrozenSinceUSec"});
}

void BusService::request_received(const EventContext& at) {
  if (at.txn == txn_) return;
  txn_ = at.txn;
  steps_.clear();
  emit_changed({"TransactionId"});
}

void BusService::state_changed(const EventContext& at) {
  if (serving_)
    log_send_error(sd_bus_emit_signal(bus_, kBusPath, kBusInterface, "PhaseChanged", "tss", at.txn,
                                      std::string(op_name(at.op)).c_str(), std::string(state_name(at.state)).c_str()),
                   "PhaseChanged");
  emit_changed({"State"});
  update_frozen_since();
}

void BusService::participant_finished(const EventContext& at, std::string_view participant, Action action,
                                      const Outcome& outcome) {
  if (at.txn == txn_) hvvss::append_steps(&steps_, participant, action, outcome);
  update_frozen_since();
}

void BusService::transaction_finished(const EventContext& at, HvStatus status, Clock::duration took) {
  last_ = {at.txn, std::string(op_name(at.op)), std::string(status_name(status)), usec(took),
           at.txn == txn_ ? std::exchange(steps_, {}) : std::vector<Step>{}};
  if (serving_)
    log_send_error(
        sd_bus_emit_signal(bus_, kBusPath, kBusInterface, "TransactionFinished", "ts", at.txn, last_.result.c_str()),
        "TransactionFinished");
  emit_changed({"LastTransaction", "LastTransactionSteps"});
  update_frozen_since();
}

}  // namespace hvvss
