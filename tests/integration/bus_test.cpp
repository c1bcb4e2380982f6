// Applications take part over D-Bus: the real agent on a real private dbus-daemon (with the
// system bus's own policy and ours, or with one that allows everything), real example writers as
// separate processes, the simulator as the host, and real loop-mounted filesystems. Order is
// proven with the writers' own timestamps and the kernel's frozen state; refusals with a process
// running as uid nobody.
#include "tests/integration/agent_fixture.h"
#include "tests/integration/bus_harness.h"

#include <gtest/gtest.h>
#include <csignal>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

namespace hvvss::test {
namespace {

constexpr const char* kAgent = "io.github.hvvss.Agent1";
constexpr const char* kPath = "/io/github/hvvss/Agent1";

uint64_t to_u64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }

std::string ctl_bin() { return HV_VSS_CTL_BIN; }

// A line of a table whose first words are `cells`.
bool has_row(const std::string& table, const std::vector<std::string>& cells) {
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> row;
    for (std::string w; row.size() < cells.size() && words >> w;) row.push_back(w);
    if (row == cells) return true;
  }
  return false;
}

// Runs `argv` with `env` added to the environment; its stdout and stderr together.
CommandResult run_with_env(const std::vector<std::string>& env, const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", "/usr/bin/env"};
  full.insert(full.end(), env.begin(), env.end());
  full.insert(full.end(), argv.begin(), argv.end());
  Process p(full, "/dev/null");
  CommandResult r;
  while (auto line = p.read_line()) r.output += *line + "\n";
  r.status = p.wait();
  return r;
}

// A connection of the test's own that follows one signal and waits, bounded by kPatience, until
// what it follows holds. dbus-daemon sends a signal to every connection that follows it at once,
// so once the test has seen it, so has the agent.
class Follower {
 public:
  // `match` selects the signals; `on_signal` updates the state that `done` checks.
  Follower(const std::string& address, const std::string& match, sd_bus_message_handler_t on_signal, void* state) {
    ok_ = sd_bus_new(&bus_) >= 0 && sd_bus_set_address(bus_, address.c_str()) >= 0 &&
          sd_bus_set_bus_client(bus_, 1) >= 0 && sd_bus_start(bus_) >= 0 &&
          sd_bus_add_match(bus_, nullptr, match.c_str(), on_signal, state) >= 0;
  }
  ~Follower() { sd_bus_flush_close_unref(bus_); }
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;
  sd_bus* bus() const { return bus_; }
  template <typename Done>
  bool wait_until(Done done) {
    auto until = Clock::now() + kPatience;
    while (ok_ && !done() && Clock::now() < until) {
      int r = sd_bus_process(bus_, nullptr);
      if (r < 0) return false;
      if (r == 0) sd_bus_wait(bus_, 100'000);
    }
    return ok_ && done();
  }

 private:
  sd_bus* bus_ = nullptr;
  bool ok_ = false;
};

// Waits until a bus name has an owner (or none).
bool wait_for_owner(const std::string& address, const std::string& name, bool owned) {
  int state = -1;
  Follower follower(
      address, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" + name + "'",
      [](sd_bus_message* m, void* userdata, sd_bus_error*) {
        const char *n, *old_owner, *new_owner;
        if (sd_bus_message_read(m, "sss", &n, &old_owner, &new_owner) >= 0)
          *static_cast<int*>(userdata) = *new_owner ? 1 : 0;
        return 0;
      },
      &state);
  int has = 0;
  sd_bus_message* reply = nullptr;
  if (sd_bus_call_method(follower.bus(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "NameHasOwner", nullptr, &reply, "s", name.c_str()) >= 0 &&
      sd_bus_message_read(reply, "b", &has) >= 0 && state < 0)
    state = has;
  sd_bus_message_unref(reply);
  return follower.wait_until([&] { return state == static_cast<int>(owned); });
}

// Waits until the agent's State property is `want`, following its PropertiesChanged.
bool wait_for_state(const std::string& address, const std::string& want) {
  std::string state;
  Follower follower(
      address,
      "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='" +
          std::string(kPath) + "'",
      [](sd_bus_message* m, void* userdata, sd_bus_error*) {
        const char* interface = nullptr;
        if (sd_bus_message_read(m, "s", &interface) < 0 || sd_bus_message_enter_container(m, 'a', "{sv}") < 0) return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
          const char* name = nullptr;
          const char* value = nullptr;
          if (sd_bus_message_read(m, "s", &name) < 0) return 0;
          if (std::string_view(name) == "State" && sd_bus_message_read(m, "v", "s", &value) >= 0)
            *static_cast<std::string*>(userdata) = value;
          else if (sd_bus_message_skip(m, "v") < 0)
            return 0;
          if (sd_bus_message_exit_container(m) < 0) return 0;
        }
        return 0;
      },
      &state);
  char* now = nullptr;
  if (sd_bus_get_property_string(follower.bus(), kAgent, kPath, kAgent, "State", nullptr, &now) >= 0 && state.empty())
    state = now;
  std::free(now);
  return follower.wait_until([&] { return state == want; });
}

// The members of one interface in introspection XML, each as a line: "method RegisterWriter(in o,
// in s, in a{sv})", "property State s read", "signal PhaseChanged(t, s, s)". Comments and
// annotations are passed over; attributes may come in any order.
std::set<std::string> members(const std::string& xml, const std::string& interface) {
  std::set<std::string> out;
  std::string in_interface, member, args;
  bool signal = false;
  for (size_t at = xml.find('<'); at != std::string::npos; at = xml.find('<', at + 1)) {
    if (xml.compare(at, 4, "<!--") == 0) {
      at = xml.find("-->", at);
      if (at == std::string::npos) break;
      continue;
    }
    size_t end = xml.find('>', at);
    if (end == std::string::npos) break;
    std::string tag = xml.substr(at + 1, end - at - 1);
    auto attr = [&](const std::string& key) {
      size_t k = tag.find(" " + key + "=\"");
      if (k == std::string::npos) return std::string();
      k += key.size() + 3;
      return tag.substr(k, tag.find('"', k) - k);
    };
    std::string name = tag.substr(0, tag.find_first_of(" />", 1));
    if (name == "interface") {
      in_interface = attr("name");
    } else if (in_interface != interface) {
      continue;
    } else if (name == "method" || name == "signal") {
      member = attr("name");
      signal = name == "signal";
      args.clear();
      if (tag.back() == '/') out.insert(name + " " + member + "()");
    } else if (name == "arg") {
      std::string direction = signal ? "" : (attr("direction").empty() ? "in" : attr("direction")) + " ";
      args += (args.empty() ? "" : ", ") + direction + attr("type");
    } else if (name == "/method" || name == "/signal") {
      out.insert(name.substr(1) + " " + member + "(" + args + ")");
    } else if (name == "property") {
      out.insert("property " + attr("name") + " " + attr("type") + " " + attr("access"));
    }
  }
  return out;
}

class BusTest : public AgentTest {
 protected:
  void TearDown() override {
    if (HasFailure())
      for (auto& w : writers_) std::fprintf(stderr, "---- writer stderr\n%s\n", w->stderr_text().c_str());
    writers_.clear();
    AgentTest::TearDown();
    bus_.reset();
  }

  // The agent on the test's bus, once it owns its name.
  Process& start_agent_on_bus(Policy policy = Policy::Shipped, AgentRun run = {}) {
    bus_ = std::make_unique<PrivateBus>(policy);
    run.env.push_back("DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + bus_->socket());
    Process& agent = start_agent(std::move(run));
    EXPECT_TRUE(wait_for_owner(bus_->address(), kAgent, true)) << "the agent never owned " << kAgent;
    return agent;
  }
  // An example writer, once the agent has registered it.
  ExampleWriter& writer(std::vector<std::string> args, RunAs who = RunAs::Root) {
    auto& w = *writers_.emplace_back(std::make_unique<ExampleWriter>(*bus_, std::move(args), who));
    EXPECT_TRUE(w.wait_for("registered")) << w.stderr_text();
    return w;
  }
  CommandResult agent_call(RunAs who, std::vector<std::string> args) {
    std::vector<std::string> argv = {"call", kAgent, kPath, kAgent};
    argv.insert(argv.end(), args.begin(), args.end());
    return bus_->busctl(who, argv);
  }
  std::string property(const std::string& name, RunAs who = RunAs::Root) {
    return bus_->busctl(who, {"get-property", kAgent, kPath, kAgent, name}).output;
  }
  // The simulator's reply line for `op`; its fields via json_field().
  static std::string reply_line(Process& sim, const std::string& op) {
    auto line = sim.read_until({"\"event\":\"reply\"", "\"op\":\"" + op + "\""});
    return line.value_or("");
  }
  static uint64_t mono_us(const std::string& sim_line) {
    return static_cast<uint64_t>(std::strtod(json_field(sim_line, "mono_ms").c_str(), nullptr) * 1000);
  }
  // A TestSnapshot that holds for 50 s, called by busctl in the background; returns once the
  // agent says it is frozen.
  std::unique_ptr<Process> start_holding_test_snapshot() {
    auto test = std::make_unique<Process>(
        std::vector<std::string>{"busctl", "--address=" + bus_->address(), "--timeout=120", "call", kAgent, kPath,
                                 kAgent, "TestSnapshot", "t", "50000000"},
        dir() + "/busctl.err");
    EXPECT_TRUE(wait_for_state(bus_->address(), "frozen"));
    return test;
  }
  // Its reply says HV_E_FAIL.
  static void expect_test_snapshot_failed(Process& test) {
    auto result = test.read_line();
    ASSERT_TRUE(result);
    EXPECT_EQ(result->rfind("sa(ssst) \"HV_E_FAIL\"", 0), 0u) << *result;
  }
  std::vector<std::string> flush_to_every_mount() const {
    std::vector<std::string> args;
    for (const auto& m : mounts()) args.insert(args.end(), {"--flush-to", m});
    return args;
  }

  std::unique_ptr<PrivateBus> bus_;
  std::vector<std::unique_ptr<ExampleWriter>> writers_;
};

TEST_F(BusTest, WritersFreezeBeforeTheFilesystemsAndThawAfterThemWithoutHoldingTheThawReply) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold-stdin"});
  start_agent_on_bus();
  auto args = flush_to_every_mount();
  args.insert(args.end(), {"--name", "db1"});
  ExampleWriter& db1 = writer(args);
  args.back() = "db2";
  args.insert(args.end(), {"--thaw", "hang"});
  ExampleWriter& db2 = writer(args);

  sim.write_stdin("go");  // the writers are registered: the host may begin
  std::string check_reply = reply_line(sim, "HOT_BACKUP");
  ASSERT_EQ(json_field(check_reply, "status"), "HV_S_OK");
  auto check = db1.wait_for("call", {{"method", "Check"}});
  ASSERT_TRUE(check);
  uint64_t txn = to_u64((*check)["txn"]);
  std::string freeze_reply = reply_line(sim, "FREEZE");
  ASSERT_EQ(json_field(freeze_reply, "status"), "HV_S_OK");
  for (ExampleWriter* w : {&db1, &db2}) {
    // Each writer flushed a file to every filesystem inside its Freeze (so none was frozen yet)
    // and answered before the host got its reply.
    auto replied = w->wait_for("replied", {{"method", "Freeze"}, {"txn", std::to_string(txn)}});
    ASSERT_TRUE(replied);
    EXPECT_LT(to_u64((*replied)["mono_us"]), mono_us(freeze_reply));
  }
  auto probes = probes_blocked_on_every_mount();  // and now every filesystem is frozen
  EXPECT_EQ(property("State"), "s \"frozen\"\n");

  // The host's THAW is answered although db2 never answers its Thaw: the reply does not wait for
  // the writers. (Their timestamps cannot order the two: the simulator stamps a reply when it
  // reads it, which may be after a writer got its call.)
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_TRUE(db2.wait_call("Thaw", txn));
  // db1's Thaw flushed a file to every filesystem before it answered: they were thawed by then.
  EXPECT_TRUE(db1.wait_call("Thaw", txn));
  EXPECT_TRUE(db1.wait_for("replied", {{"method", "Thaw"}, {"txn", std::to_string(txn)}}));
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, ARequiredWriterThatFailsItsFreezeVetoesAndTheOthersAreToldAbort) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold", "0", "--expect", "FREEZE=HV_E_FAIL"});
  Process& agent = start_agent_on_bus();
  ExampleWriter& bad = writer({"--name", "bad", "--freeze", "fail"});
  ExampleWriter& good = writer({"--name", "good"});
  sim.write_stdin("go");  // the writers are registered: the host may begin
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_E_FAIL");
  auto freeze = good.wait_for("call", {{"method", "Freeze"}});
  ASSERT_TRUE(freeze);
  EXPECT_TRUE(good.wait_for("abort", {{"txn", (*freeze)["txn"]}}));
  EXPECT_TRUE(bad.wait_for("abort", {{"txn", (*freeze)["txn"]}}));
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable(mounts()));
  std::string log = stop_and_read_log(agent);
  EXPECT_EQ(log.find("fsfreeze freeze"), std::string::npos) << "a filesystem was frozen:\n" << log;
  EXPECT_NE(log.find("writers/bad freeze: failed"), std::string::npos) << log;
}

TEST_F(BusTest, ARequiredWriterThatHangsVetoesInsideTheBudgetAndIsToldAbort) {
  use({"ext4"});
  Process& sim =
      start_sim({"backup", "--start-stdin", "--hold", "0", "--reply-budget", "3", "--expect", "FREEZE=HV_E_FAIL"});
  start_agent_on_bus(Policy::Shipped, {.extra = {"--reply-budget", "3s"}});
  ExampleWriter& stuck = writer({"--name", "stuck", "--freeze", "hang"});
  sim.write_stdin("go");                            // the writers are registered: the host may begin
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_E_FAIL");  // the simulator fails a reply over 3 s itself
  auto freeze = stuck.wait_for("call", {{"method", "Freeze"}});
  ASSERT_TRUE(freeze);
  EXPECT_TRUE(stuck.wait_for("abort", {{"txn", (*freeze)["txn"]}}));
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable(mounts()));
}

TEST_F(BusTest, OptionalWritersThatFailOrHangAreReportedAndTheBackupSucceeds) {
  use({"ext4"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold", "0", "--reply-budget", "3"});
  Process& agent = start_agent_on_bus(Policy::Shipped, {.extra = {"--reply-budget", "3s"}});
  writer({"--name", "flaky", "--optional", "--freeze", "fail"});
  writer({"--name", "sleepy", "--optional", "--freeze", "hang"});
  sim.write_stdin("go");  // the writers are registered: the host may begin
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  ASSERT_TRUE(wait_for_owner(bus_->address(), kAgent, true));
  std::string steps = property("LastTransactionSteps");
  EXPECT_NE(steps.find("\"writers/flaky\" \"freeze\" \"failed\""), std::string::npos) << steps;
  EXPECT_NE(steps.find("\"writers/sleepy\" \"freeze\" \"timeout\""), std::string::npos) << steps;
  EXPECT_NE(steps.find("\"fsfreeze\" \"freeze\" \"ok\""), std::string::npos) << steps;
  EXPECT_NE(property("LastTransaction").find("\"THAW\" \"HV_S_OK\""), std::string::npos);
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("writers/flaky freeze: failed"), std::string::npos) << log;
  EXPECT_NE(log.find("writers/sleepy freeze: timeout"), std::string::npos) << log;
}

TEST_F(BusTest, AWriterKilledWhileFrozenIsUnregisteredAndTheThawStillSucceeds) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold-stdin"});
  start_agent_on_bus();
  ExampleWriter& doomed = writer({"--name", "doomed"});
  sim.write_stdin("go");  // the writers are registered: the host may begin
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  auto probes = probes_blocked_on_every_mount();
  doomed.process().kill(SIGKILL);
  doomed.process().wait();
  ASSERT_TRUE(wait_for_owner(bus_->address(), doomed.bus_name(), false));
  // dbus-daemon told the agent before it told us, and the agent reads its messages in order.
  EXPECT_EQ(agent_call(RunAs::Root, {"ListWriters"}).output, "a(ssob) 0\n");
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, ARequiredWriterFailingCheckFailsHotBackup) {
  use({"ext4"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold", "0", "--expect", "HOT_BACKUP=HV_E_FAIL"});
  start_agent_on_bus();
  writer({"--name", "picky", "--check", "fail"});
  sim.write_stdin("go");  // the writers are registered: the host may begin
  EXPECT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_E_FAIL");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, AnOptionalWriterFailingCheckDoesNotFailHotBackup) {
  use({"ext4"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold", "0"});
  start_agent_on_bus();
  writer({"--name", "picky", "--check", "fail", "--optional"});
  sim.write_stdin("go");  // the writers are registered: the host may begin
  EXPECT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
}

class BusPolicyTest : public BusTest, public ::testing::WithParamInterface<Policy> {};

TEST_P(BusPolicyTest, NobodyMayReadButNotRegisterTestSnapshotOrThaw) {
  use({"ext4"});
  Process& sim = start_sim({"idle", "--hold-stdin"});
  Process& agent = start_agent_on_bus(GetParam());
  ExampleWriter refused(*bus_, {"--name", "intruder"}, RunAs::Nobody);
  EXPECT_EQ(refused.process().wait(), 1);
  EXPECT_NE(refused.stderr_text().find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos)
      << refused.stderr_text();
  for (auto args : {std::vector<std::string>{"TestSnapshot", "t", "0"}, std::vector<std::string>{"Thaw"}}) {
    CommandResult r = agent_call(RunAs::Nobody, args);
    EXPECT_NE(r.status, 0) << args[0];
    EXPECT_NE(r.output.find("ccess denied"), std::string::npos) << args[0] << ": " << r.output;
  }
  EXPECT_EQ(property("State", RunAs::Nobody), "s \"idle\"\n");
  EXPECT_EQ(agent_call(RunAs::Nobody, {"ListWriters"}).output, "a(ssob) 0\n");
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
  std::string log = stop_and_read_log(agent);
  if (GetParam() == Policy::AllowAll) {  // the bus let them through: the agent refused them itself
    EXPECT_NE(log.find("uid 65534"), std::string::npos) << log;
  }
}

INSTANTIATE_TEST_SUITE_P(BothPolicies, BusPolicyTest, ::testing::Values(Policy::Shipped, Policy::AllowAll),
                         [](const auto& info) { return policy_name(info.param); });

TEST_F(BusTest, TestSnapshotFreezesAndThawsTheAllowListedFilesystemsAndReportsEachStep) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"idle", "--hold-stdin"});
  start_agent_on_bus();
  writer({"--name", "db"});
  CommandResult r = agent_call(RunAs::Root, {"TestSnapshot", "t", "0"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("sa(ssst) \"HV_S_OK\"", 0), 0u) << r.output;
  for (std::string step :
       {"\"writers/db\" \"check\" \"ok\"", "\"fsfreeze\" \"check\" \"ok\"", "\"writers/db\" \"freeze\" \"ok\"",
        "\"fsfreeze\" \"freeze\" \"ok\"", "\"fsfreeze\" \"thaw\" \"ok\"", "\"writers/db\" \"thaw\" \"ok\""})
    EXPECT_NE(r.output.find(step), std::string::npos) << step << " missing in " << r.output;
  EXPECT_TRUE(all_writable(mounts()));
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, ATestSnapshotHoldsTheFilesystemsFrozenUntilAnEmergencyThaw) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"idle", "--hold-stdin"});
  start_agent_on_bus();
  std::unique_ptr<Process> test = start_holding_test_snapshot();
  auto probes = probes_blocked_on_every_mount();
  CommandResult thaw = agent_call(RunAs::Root, {"Thaw"});
  EXPECT_EQ(thaw.status, 0) << thaw.output;
  EXPECT_NE(thaw.output.find("fsfreeze: thawed 2 filesystem(s)"), std::string::npos) << thaw.output;
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  // The test snapshot's own THAW then finds nothing frozen by it: not a consistent snapshot.
  expect_test_snapshot_failed(*test);
  EXPECT_EQ(test->wait(), 0);
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, AHostBackupDuringATestSnapshotEndsTheTestAndSucceeds) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"backup", "--hold-stdin"});
  start_agent_on_bus();
  ASSERT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  // While the host's snapshot runs, a test snapshot is refused.
  CommandResult busy = run_with_env(bus_->env(), {ctl_bin(), "test-snapshot"});
  EXPECT_EQ(busy.status, 1);
  EXPECT_NE(busy.output.find("io.github.hvvss.Error.Busy"), std::string::npos) << busy.output;
  sim.write_stdin("thaw");
  ASSERT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);

  std::unique_ptr<Process> test = start_holding_test_snapshot();
  auto probes = probes_blocked_on_every_mount();  // the test snapshot holds them
  Process& host = start_sim({"backup", "--hold", "0"});
  EXPECT_EQ(host.wait(), 0);  // every request of the host's backup answered HV_S_OK, on time
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  expect_test_snapshot_failed(*test);
  EXPECT_TRUE(all_writable(mounts()));
}

TEST_F(BusTest, CtlStatusAnswersDuringAFreezeAndMonitorFollowsThePhases) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold-stdin"});
  start_agent_on_bus();
  // Its readiness line (stderr) says its matches are in place: no signal after it is missed.
  Process monitor({"/bin/sh", "-c", "exec \"$0\" monitor --json 2>&1", ctl_bin()}, dir() + "/monitor.err", false,
                  bus_->env());
  ASSERT_TRUE(monitor.read_until({"Monitoring io.github.hvvss.Agent1"}));
  sim.write_stdin("go");
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  CommandResult status = run_with_env(bus_->env(), {ctl_bin(), "status", "--json"});
  EXPECT_EQ(status.status, 0) << status.output;
  EXPECT_NE(status.output.find("\"state\":\"frozen\""), std::string::npos) << status.output;
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  for (std::string phase : {"checking", "freezing", "frozen", "thawing", "idle"})
    EXPECT_TRUE(monitor.read_until({"\"event\":\"phase\"", "\"phase\":\"" + phase + "\""})) << phase;
  EXPECT_TRUE(monitor.read_until({"\"event\":\"finished\"", "HV_S_OK"}));
  EXPECT_EQ(sim.wait(), 0);
  monitor.kill(SIGTERM);
  EXPECT_EQ(monitor.wait(), 0);
}

TEST_F(BusTest, CtlTestSnapshotFreezesAndThawsTheAllowListedFilesystemsAndPrintsTheSteps) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"idle", "--hold-stdin"});
  start_agent_on_bus();
  CommandResult r = run_with_env(bus_->env(), {ctl_bin(), "test-snapshot", "--hold", "100ms"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Result: HV_S_OK"), std::string::npos) << r.output;
  for (std::string phase : {"check", "freeze", "thaw"})
    EXPECT_TRUE(has_row(r.output, {"fsfreeze", phase, "ok"})) << phase << " missing in\n" << r.output;
  EXPECT_TRUE(all_writable(mounts()));
  CommandResult nobody = run_with_env(bus_->env(), as(RunAs::Nobody, {ctl_bin(), "test-snapshot"}));
  EXPECT_EQ(nobody.status, 1) << nobody.output;
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, CtlSaysTheAgentIsNotRunning) {
  use({"ext4"});
  bus_ = std::make_unique<PrivateBus>(Policy::Shipped);
  CommandResult r = run_with_env(bus_->env(), {ctl_bin(), "status"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("not running"), std::string::npos) << r.output;
}

TEST_F(BusTest, ABusThatGoesAwayAndComesBackIsServedAgainAndWritersRegisterAgain) {
  use({"ext4"});
  Process& sim = start_sim({"backup", "--start-stdin", "--hold", "0"});
  start_agent_on_bus();
  bus_->restart();
  ASSERT_TRUE(wait_for_owner(bus_->address(), kAgent, true)) << "the agent did not come back to the bus";
  ExampleWriter& w = writer({"--name", "again"});
  sim.write_stdin("go");
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  EXPECT_TRUE(w.wait_for("call", {{"method", "Freeze"}}));
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, TheAgentServesExactlyTheInterfaceItsIntrospectionXmlDescribes) {
  use({"ext4"});
  Process& sim = start_sim({"idle", "--hold-stdin"});
  start_agent_on_bus();
  CommandResult served = bus_->busctl(RunAs::Root, {"introspect", "--xml-interface", kAgent, kPath});
  ASSERT_EQ(served.status, 0) << served.output;
  std::set<std::string> contract = members(slurp(HV_VSS_AGENT1_XML), kAgent);
  EXPECT_EQ(contract.size(), 12u);  // 5 methods, 5 properties, 2 signals
  EXPECT_EQ(members(served.output, kAgent), contract);
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(BusTest, WithoutAnyBusTheAgentStillAnswersABackup) {
  use({"ext4"});
  Process& sim = start_sim({"backup", "--hold", "0"});
  Process& agent = start_agent();  // its bus address leads nowhere
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("serving the host without applications until the bus is back"), std::string::npos) << log;
}

}  // namespace
}  // namespace hvvss::test
