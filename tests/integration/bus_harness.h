// D-Bus for the integration tests: a private dbus-daemon (with the system bus's own policy and
// ours, or one that allows everything), the example writer as a child process, a connection of
// the test's own, and a stand-in for the agent's D-Bus service. Everything waits on events (a
// line, a message, a condition) bounded by kPatience.
#pragma once

#include "tests/integration/harness.h"

#include <systemd/sd-bus.h>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace hvvss::test {

enum class Policy {
  Shipped,   // Debian's system.conf with our systemd/io.github.hvvss.Agent1.conf instead of its system.d
  AllowAll,  // everyone may own, send and receive anything
};
std::string policy_name(Policy policy);
// How GoogleTest prints a Policy parameter (test names and ctest listings).
inline void PrintTo(Policy policy, std::ostream* out) { *out << policy_name(policy); }

enum class RunAs { Root, Nobody };
// `argv` run as `who`: as nobody through setpriv (uid nobody, gid nogroup, no other groups).
std::vector<std::string> as(RunAs who, std::vector<std::string> argv);

struct CommandResult {
  int status = -1;
  std::string output;  // stdout, then stderr
};

// A dbus-daemon of the test's own, listening on a socket in a fresh directory under /tmp that
// uid nobody can reach; stopped and removed when this goes away.
class PrivateBus {
 public:
  explicit PrivateBus(Policy policy);
  ~PrivateBus();
  PrivateBus(const PrivateBus&) = delete;
  PrivateBus& operator=(const PrivateBus&) = delete;

  const std::string& address() const { return address_; }  // unix:path=...,guid=...
  // The socket, the same across restarts (address() names one daemon by its guid).
  std::string socket() const { return dir_ + "/system_bus_socket"; }
  // Stops the daemon and starts another on the same socket, as a restarted system bus would be.
  void restart();
  const std::string& dir() const { return dir_; }
  // DBUS_SYSTEM_BUS_ADDRESS=address(), for a child process's environment.
  std::vector<std::string> env() const { return {"DBUS_SYSTEM_BUS_ADDRESS=" + address_}; }
  // Runs `busctl --address=ADDRESS args...` as `who`.
  CommandResult busctl(RunAs who, const std::vector<std::string>& args) const;
  // A fresh path in dir() for a child's stderr.
  std::string log_path(const std::string& what) const;

 private:
  void start_daemon();
  void stop_daemon();

  std::string dir_;
  std::string address_;
  std::unique_ptr<Process> daemon_;
  mutable int logs_ = 0;
};

// The fields of an example writer's line: "event=call method=Freeze txn=7" gives
// {event: call, method: Freeze, txn: 7}; quoted values are unquoted.
using Event = std::map<std::string, std::string>;
Event parse_event(const std::string& line);

// hv-vss-writer-example on a private bus; returns once it serves Writer1 (its "started" line).
class ExampleWriter {
 public:
  ExampleWriter(const PrivateBus& bus, std::vector<std::string> args = {}, RunAs who = RunAs::Root);
  ExampleWriter(const ExampleWriter&) = delete;
  ExampleWriter& operator=(const ExampleWriter&) = delete;

  // The next event named `event` whose fields include `fields` (lines before it are passed
  // over); nullopt after kPatience or once the writer's output ends.
  std::optional<Event> wait_for(const std::string& event, const Event& fields = {});
  // The "call" event of `method` for transaction `txn`.
  std::optional<Event> wait_call(const std::string& method, uint64_t txn);
  const std::string& bus_name() const { return bus_name_; }  // its unique name
  const std::string& object() const { return object_; }
  std::string stderr_text() const;
  Process& process() { return process_; }

 private:
  std::string stderr_path_;
  Process process_;
  std::string bus_name_, object_;
};

struct Reply {
  std::string error_name;  // empty: a method return
  std::string error_message;
  bool ok() const { return error_name.empty(); }
};

// The test's own connection to a private bus, as root, used from the test's thread.
class BusClient {
 public:
  explicit BusClient(const std::string& address);
  ~BusClient();
  BusClient(const BusClient&) = delete;
  BusClient& operator=(const BusClient&) = delete;

  // A call in flight; reply is set once its reply has been processed.
  struct Pending {
    std::optional<Reply> reply;
    sd_bus_slot* slot = nullptr;
    ~Pending() { sd_bus_slot_unref(slot); }
  };

  // Calls io.github.hvvss.Writer1.`method`(txn) on a writer and waits for the reply.
  Reply call_writer(const std::string& destination, const std::string& object, const std::string& method, uint64_t txn);
  std::unique_ptr<Pending> start_writer_call(const std::string& destination, const std::string& object,
                                             const std::string& method, uint64_t txn);
  // Dispatches whatever has arrived, without waiting.
  void process();
  sd_bus* get() const { return bus_; }

 private:
  sd_bus* bus_ = nullptr;
};

// What a writer sent to RegisterWriter.
struct WriterRegistration {
  std::string sender;  // its unique bus name
  std::string object;
  std::string name;
  std::optional<bool> required;
  std::optional<uint64_t> timeout_usec;
};

// A stand-in for the agent's D-Bus service (io.github.hvvss.Agent1 at /io/github/hvvss/Agent1),
// as root on a thread of its own: it records RegisterWriter calls and answers them with success
// or `refusal` (an error name), and answers the other methods and the properties with
// placeholders, so that tests can tell whether a call got through the bus's policy. The name is
// released when this goes away.
class FakeAgent {
 public:
  explicit FakeAgent(const std::string& address, std::string refusal = {});
  ~FakeAgent();
  FakeAgent(const FakeAgent&) = delete;
  FakeAgent& operator=(const FakeAgent&) = delete;

  // Waits until `count` RegisterWriter calls have arrived; the first `count` (fewer after kPatience).
  std::vector<WriterRegistration> registrations(size_t count);

 private:
  void serve(const std::string& address, std::promise<std::string> ready);
  static int on_register(sd_bus_message* call, void* userdata, sd_bus_error* error);

  std::string refusal_;
  UniqueFd stop_;  // an eventfd: written to end the thread's loop
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<WriterRegistration> registrations_;
  std::thread thread_;
};

std::string writer_bin();

}  // namespace hvvss::test
