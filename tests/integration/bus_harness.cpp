#include "tests/integration/bus_harness.h"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace hvvss::test {
namespace {

constexpr const char* kAgent = "io.github.hvvss.Agent1";
constexpr const char* kAgentPath = "/io/github/hvvss/Agent1";
constexpr const char* kSystemConf = "/usr/share/dbus-1/system.conf";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

// The element a line of XML opens: "  <includedir>system.d</includedir>" gives "includedir".
std::string_view opening_element(std::string_view line) {
  size_t lt = line.find_first_not_of(" \t");
  if (lt == std::string_view::npos || line[lt] != '<') return {};
  size_t end = line.find_first_of(" \t/>", lt + 1);
  return line.substr(lt + 1, (end == std::string_view::npos ? line.size() : end) - lt - 1);
}

// Debian's system bus as it is configured (its default policy and root's), but listening on
// `socket`, with our policy file instead of the services in system.d, and without what only the
// real system bus does: dropping to user messagebus, forking, a pid file, syslog, activation,
// and the machine's local configuration in /etc.
std::string shipped_config(const std::string& socket) {
  static const std::set<std::string_view> left_out{
      "user", "fork", "standard_system_servicedirs", "servicehelper", "pidfile", "syslog", "include", "includedir"};
  std::istringstream in(read_text(kSystemConf));
  std::string config, line;
  int listens = 0, service_dirs = 0;
  while (std::getline(in, line)) {
    std::string_view element = opening_element(line);
    if (element == "listen") {
      config += "  <listen>unix:path=" + socket + "</listen>\n";
      ++listens;
    } else if (line.find("<includedir>system.d</includedir>") != std::string::npos) {
      config += std::string("  <include>") + HV_VSS_BUS_POLICY + "</include>\n";
      ++service_dirs;
    } else if (!left_out.contains(element)) {
      config += line + "\n";
    }
  }
  if (listens != 1 || service_dirs != 1)
    throw std::runtime_error(std::string(kSystemConf) +
                             " has no single <listen> and <includedir>system.d: its layout changed");
  return config;
}

std::string allow_all_config(const std::string& socket) {
  return R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" +
         socket + R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>                              <!-- anyone may connect -->
    <allow own="*"/>                               <!-- and own any name -->
    <allow send_destination="*" eavesdrop="true"/> <!-- and send anything -->
    <allow eavesdrop="true"/>                      <!-- and receive anything -->
  </policy>
</busconfig>
)";
}

Reply reply_of(sd_bus_message* message, const sd_bus_error* error) {
  if (const sd_bus_error* e = message ? sd_bus_message_get_error(message) : error; e && e->name)
    return {e->name, e->message ? e->message : ""};
  return {};
}

}  // namespace

std::string writer_bin() { return HV_VSS_WRITER_BIN; }

std::string policy_name(Policy policy) { return policy == Policy::Shipped ? "Shipped" : "AllowAll"; }

std::vector<std::string> as(RunAs who, std::vector<std::string> argv) {
  if (who == RunAs::Nobody)
    argv.insert(argv.begin(), {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
  return argv;
}

PrivateBus::PrivateBus(Policy policy) {
  dir_ = "/tmp/hv-vss-bus.XXXXXX";
  if (!mkdtemp(dir_.data())) throw std::runtime_error("mkdtemp failed: " + dir_);
  try {
    // Searchable by everyone, listable by root only: nobody reaches the socket and nothing else.
    if (chmod(dir_.c_str(), 0711) != 0) throw std::runtime_error("chmod " + dir_ + ": " + std::strerror(errno));
    write_text(dir_ + "/bus.conf", policy == Policy::Shipped ? shipped_config(socket()) : allow_all_config(socket()));
    start_daemon();
  } catch (...) {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
    throw;
  }
}

void PrivateBus::start_daemon() {
  std::string config = dir_ + "/bus.conf", log = dir_ + "/dbus-daemon.log";
  daemon_ = std::make_unique<Process>(
      std::vector<std::string>{"dbus-daemon", "--nofork", "--print-address", "--config-file=" + config}, log);
  // It prints its address once it listens.
  auto line = daemon_->read_line();
  if (!line || line->rfind("unix:path=", 0) != 0)
    throw std::runtime_error("dbus-daemon did not start with " + config + ":\n" + read_text(log));
  address_ = *line;
}

void PrivateBus::stop_daemon() {
  daemon_->kill(SIGTERM);
  daemon_->wait();
}

void PrivateBus::restart() {
  stop_daemon();
  start_daemon();
}

PrivateBus::~PrivateBus() {
  stop_daemon();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PrivateBus::log_path(const std::string& what) const {
  return dir_ + "/" + what + "-" + std::to_string(++logs_) + ".log";
}

CommandResult PrivateBus::busctl(RunAs who, const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"busctl", "--address=" + address_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string log = log_path("busctl");
  Process process(as(who, argv), log);
  CommandResult result;
  while (auto line = process.read_line()) result.output += *line + "\n";
  result.status = process.wait();
  result.output += read_text(log);
  return result;
}

Event parse_event(const std::string& line) {
  Event event;
  size_t i = 0;
  while (i < line.size()) {
    size_t eq = line.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = line.substr(i, eq - i), value;
    i = eq + 1;
    if (i < line.size() && line[i] == '"') {
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        value += line[i];
      }
      ++i;  // the closing quote
    } else {
      size_t end = std::min(line.find(' ', i), line.size());
      value = line.substr(i, end - i);
      i = end;
    }
    event[key] = value;
    while (i < line.size() && line[i] == ' ') ++i;
  }
  return event;
}

ExampleWriter::ExampleWriter(const PrivateBus& bus, std::vector<std::string> args, RunAs who)
    : stderr_path_(bus.log_path("writer")),
      process_(as(who,
                  [&] {
                    args.insert(args.begin(), writer_bin());
                    return args;
                  }()),
               stderr_path_, false, bus.env()) {
  auto started = wait_for("started");
  if (!started) throw std::runtime_error("hv-vss-writer-example did not start:\n" + stderr_text());
  bus_name_ = (*started)["bus_name"];
  object_ = (*started)["object"];
}

std::optional<Event> ExampleWriter::wait_for(const std::string& event, const Event& fields) {
  auto until = Clock::now() + kPatience;
  while (auto line = process_.read_line(std::max<Clock::duration>(Clock::duration::zero(), until - Clock::now()))) {
    Event parsed = parse_event(*line);
    bool match = parsed["event"] == event;
    for (const auto& [key, value] : fields) match = match && parsed[key] == value;
    if (match) return parsed;
  }
  return std::nullopt;
}

std::optional<Event> ExampleWriter::wait_call(const std::string& method, uint64_t txn) {
  return wait_for("call", {{"method", method}, {"txn", std::to_string(txn)}});
}

std::string ExampleWriter::stderr_text() const { return read_text(stderr_path_); }

BusClient::BusClient(const std::string& address) {
  int r = sd_bus_new(&bus_);
  if (r >= 0) r = sd_bus_set_address(bus_, address.c_str());
  if (r >= 0) r = sd_bus_set_bus_client(bus_, 1);
  if (r >= 0) r = sd_bus_set_method_call_timeout(bus_, std::chrono::microseconds(kPatience).count());
  if (r >= 0) r = sd_bus_start(bus_);
  const char* unique_name = nullptr;
  if (r >= 0) r = sd_bus_get_unique_name(bus_, &unique_name);  // waits for Hello: sends go out at once from now on
  if (r < 0) {
    sd_bus_unref(bus_);
    throw std::runtime_error("cannot connect to " + address + ": " + std::strerror(-r));
  }
}

BusClient::~BusClient() { sd_bus_flush_close_unref(bus_); }

Reply BusClient::call_writer(const std::string& destination, const std::string& object, const std::string& method,
                             uint64_t txn) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  int r = sd_bus_call_method(bus_, destination.c_str(), object.c_str(), "io.github.hvvss.Writer1", method.c_str(),
                             &error, &reply, "t", txn);
  Reply result = r < 0 ? reply_of(nullptr, &error) : Reply{};
  if (r < 0 && result.ok()) result = {"errno", std::strerror(-r)};
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  return result;
}

std::unique_ptr<BusClient::Pending> BusClient::start_writer_call(const std::string& destination,
                                                                 const std::string& object, const std::string& method,
                                                                 uint64_t txn) {
  auto pending = std::make_unique<Pending>();
  auto on_reply = [](sd_bus_message* reply, void* userdata, sd_bus_error*) {
    static_cast<Pending*>(userdata)->reply = reply_of(reply, nullptr);
    return 0;
  };
  int r = sd_bus_call_method_async(bus_, &pending->slot, destination.c_str(), object.c_str(), "io.github.hvvss.Writer1",
                                   method.c_str(), on_reply, pending.get(), "t", txn);
  if (r < 0) throw std::runtime_error("cannot call " + method + ": " + std::strerror(-r));
  return pending;
}

void BusClient::process() {
  int r;
  while ((r = sd_bus_process(bus_, nullptr)) > 0) {
  }
  if (r < 0) throw std::runtime_error(std::string("processing the bus: ") + std::strerror(-r));
}

FakeAgent::FakeAgent(const std::string& address, std::string refusal)
    : refusal_(std::move(refusal)), stop_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!stop_) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  std::promise<std::string> ready;
  auto started = ready.get_future();
  thread_ = std::thread([this, address, ready = std::move(ready)]() mutable { serve(address, std::move(ready)); });
  std::string failure = started.wait_for(kPatience) == std::future_status::ready ? started.get() : "no answer";
  if (!failure.empty()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_.get(), &one, sizeof one);
    thread_.join();
    throw std::runtime_error("the fake agent did not start: " + failure);
  }
}

FakeAgent::~FakeAgent() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(stop_.get(), &one, sizeof one);
  thread_.join();
}

std::vector<WriterRegistration> FakeAgent::registrations(size_t count) {
  std::unique_lock lock(mutex_);
  arrived_.wait_for(lock, kPatience, [&] { return registrations_.size() >= count; });
  return {registrations_.begin(), registrations_.begin() + static_cast<long>(std::min(count, registrations_.size()))};
}

int FakeAgent::on_register(sd_bus_message* call, void* userdata, sd_bus_error*) {
  auto* self = static_cast<FakeAgent*>(userdata);
  WriterRegistration registration;
  registration.sender = sd_bus_message_get_sender(call);
  const char *object, *name;
  int r = sd_bus_message_read(call, "os", &object, &name);
  if (r >= 0) r = sd_bus_message_enter_container(call, 'a', "{sv}");
  while (r >= 0 && (r = sd_bus_message_enter_container(call, 'e', "sv")) > 0) {
    const char* key;
    r = sd_bus_message_read(call, "s", &key);
    int required = 0;
    uint64_t timeout = 0;
    if (r >= 0 && std::string_view(key) == "Required" && (r = sd_bus_message_read(call, "v", "b", &required)) >= 0)
      registration.required = required;
    else if (r >= 0 && std::string_view(key) == "TimeoutUSec" &&
             (r = sd_bus_message_read(call, "v", "t", &timeout)) >= 0)
      registration.timeout_usec = timeout;
    else if (r >= 0)
      r = sd_bus_message_skip(call, "v");
    if (r >= 0) r = sd_bus_message_exit_container(call);
  }
  if (r >= 0) r = sd_bus_message_exit_container(call);
  if (r < 0) return r;
  registration.object = object;
  registration.name = name;
  {
    std::lock_guard lock(self->mutex_);
    self->registrations_.push_back(registration);
  }
  self->arrived_.notify_all();
  if (self->refusal_.empty()) return sd_bus_reply_method_return(call, nullptr);
  return sd_bus_reply_method_errorf(call, self->refusal_.c_str(), "refused by the test's fake agent");
}

void FakeAgent::serve(const std::string& address, std::promise<std::string> ready) {
  using Handler = sd_bus_message_handler_t;
  static const Handler ok = [](sd_bus_message* m, void*, sd_bus_error*) { return sd_bus_reply_method_return(m, ""); };
  static const Handler no_writers = [](sd_bus_message* m, void*, sd_bus_error*) {
    return sd_bus_reply_method_return(m, "a(ssob)", 0);
  };
  static const Handler snapshot = [](sd_bus_message* m, void*, sd_bus_error*) {
    return sd_bus_reply_method_return(m, "sa(ssst)", "HV_S_OK", 0);
  };
  static const Handler thaw = [](sd_bus_message* m, void*, sd_bus_error*) {
    return sd_bus_reply_method_return(m, "s", "nothing was frozen");
  };
  static const sd_bus_property_get_t idle = [](sd_bus*, const char*, const char*, const char*, sd_bus_message* reply,
                                               void*,
                                               sd_bus_error*) { return sd_bus_message_append(reply, "s", "idle"); };
  // Everyone may call (sd-bus would otherwise refuse callers without CAP_SYS_ADMIN itself): what
  // is refused is refused by the bus.
  static const sd_bus_vtable kVtable[] = {
      SD_BUS_VTABLE_START(SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("RegisterWriter", "osa{sv}", "", &FakeAgent::on_register, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("UnregisterWriter", "s", "", ok, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("ListWriters", "", "a(ssob)", no_writers, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("TestSnapshot", "t", "sa(ssst)", snapshot, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("Thaw", "", "s", thaw, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_PROPERTY("State", "s", idle, 0, 0),
      SD_BUS_VTABLE_END};
  sd_event* loop = nullptr;
  sd_bus* bus = nullptr;
  int r = sd_event_new(&loop);
  if (r >= 0) r = sd_bus_new(&bus);
  if (r >= 0) r = sd_bus_set_address(bus, address.c_str());
  if (r >= 0) r = sd_bus_set_bus_client(bus, 1);
  if (r >= 0) r = sd_bus_start(bus);
  if (r >= 0) r = sd_bus_add_object_vtable(bus, nullptr, kAgentPath, kAgent, kVtable, this);
  if (r >= 0) r = sd_bus_request_name(bus, kAgent, 0);
  if (r >= 0) r = sd_bus_attach_event(bus, loop, SD_EVENT_PRIORITY_NORMAL);
  auto on_stop = [](sd_event_source* source, int, uint32_t, void*) {
    return sd_event_exit(sd_event_source_get_event(source), 0);
  };
  if (r >= 0) r = sd_event_add_io(loop, nullptr, stop_.get(), EPOLLIN, on_stop, nullptr);
  if (r >= 0) {
    ready.set_value({});
    r = sd_event_loop(loop);
    if (r < 0) std::fprintf(stderr, "the fake agent's loop failed: %s\n", std::strerror(-r));
  } else {
    ready.set_value(std::strerror(-r));
  }
  sd_bus_flush_close_unref(bus);
  sd_event_unref(loop);
}

}  // namespace hvvss::test
