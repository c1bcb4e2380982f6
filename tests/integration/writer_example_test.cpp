// hv-vss-writer-example and the D-Bus policy on a real private dbus-daemon, once with the system
// bus's policy plus ours and once with one that allows everything. Most tests have FakeAgent play
// the agent's D-Bus service, so that what they test is the writer and the bus; the last ones
// register with the real agent.
#include "tests/integration/agent_fixture.h"
#include "tests/integration/bus_harness.h"

#include <gtest/gtest.h>
#include <csignal>
#include <filesystem>
#include <fstream>

namespace hvvss::test {
namespace {

constexpr const char* kWriterFailed = "io.github.hvvss.Error.WriterFailed";

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The bus refused to deliver the call (busctl prints the AccessDenied error this way).
bool denied(const CommandResult& result) {
  return result.status != 0 && result.output.find("Access denied") != std::string::npos;
}

class WriterExampleTest : public ::testing::TestWithParam<Policy> {
 protected:
  PrivateBus bus_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Policies, WriterExampleTest, ::testing::Values(Policy::Shipped, Policy::AllowAll),
                         [](const auto& info) { return policy_name(info.param); });

TEST_P(WriterExampleTest, WaitsForTheAgentWhileNobodyOwnsItsName) {
  ExampleWriter writer(bus_);
  auto waiting = writer.wait_for("waiting");
  ASSERT_TRUE(waiting);
  EXPECT_EQ((*waiting)["agent"], "io.github.hvvss.Agent1");
}

TEST_P(WriterExampleTest, AnswersCheckFreezeAndThawCalledDirectly) {
  ExampleWriter writer(bus_);
  BusClient client(bus_.address());
  uint64_t txn = 6;
  for (const std::string method : {"Check", "Freeze", "Thaw"}) {
    SCOPED_TRACE(method);
    Reply reply = client.call_writer(writer.bus_name(), writer.object(), method, txn);
    EXPECT_TRUE(reply.ok()) << reply.error_name << ": " << reply.error_message;
    auto call = writer.wait_call(method, txn);
    ASSERT_TRUE(call);
    EXPECT_EQ((*call)["action"], "ok");
    auto replied = writer.wait_for("replied", {{"method", method}, {"txn", std::to_string(txn)}});
    ASSERT_TRUE(replied);
    EXPECT_LE(std::stoull((*call)["mono_us"]), std::stoull((*replied)["mono_us"]));
    ++txn;
  }
}

TEST_P(WriterExampleTest, FailingFreezeRepliesWriterFailedNamingThePhase) {
  ExampleWriter writer(bus_, {"--freeze", "fail"});
  BusClient client(bus_.address());
  Reply reply = client.call_writer(writer.bus_name(), writer.object(), "Freeze", 7);
  EXPECT_EQ(reply.error_name, kWriterFailed);
  EXPECT_NE(reply.error_message.find("Freeze"), std::string::npos) << reply.error_message;
  auto call = writer.wait_call("Freeze", 7);
  ASSERT_TRUE(call);
  EXPECT_EQ((*call)["action"], "fail");
  auto replied = writer.wait_for("replied", {{"method", "Freeze"}, {"txn", "7"}});
  ASSERT_TRUE(replied);
  EXPECT_EQ((*replied)["error"], kWriterFailed);
  // Check still succeeds: only Freeze was told to fail.
  EXPECT_TRUE(client.call_writer(writer.bus_name(), writer.object(), "Check", 8).ok());
}

TEST_P(WriterExampleTest, HangingFreezeNeverRepliesButHearsAbort) {
  ExampleWriter writer(bus_, {"--freeze", "hang"});
  BusClient client(bus_.address());
  auto freeze = client.start_writer_call(writer.bus_name(), writer.object(), "Freeze", 7);
  auto call = writer.wait_call("Freeze", 7);
  ASSERT_TRUE(call);
  EXPECT_EQ((*call)["action"], "hang");
  // The writer handles one message at a time and the bus keeps each sender's order: had it
  // answered Freeze, that reply would reach this connection before the reply to Abort.
  Reply abort = client.call_writer(writer.bus_name(), writer.object(), "Abort", 7);
  EXPECT_TRUE(abort.ok()) << abort.error_name;
  client.process();
  EXPECT_FALSE(freeze->reply) << "Freeze was answered: " << freeze->reply->error_name;
  EXPECT_TRUE(writer.wait_for("abort", {{"txn", "7"}}));
}

TEST_P(WriterExampleTest, FlushesAFileToEachDirectoryBeforeReplyingToFreezeAndThaw) {
  std::vector<std::string> dirs{bus_.dir() + "/data1", bus_.dir() + "/data2"};
  for (const auto& d : dirs) std::filesystem::create_directory(d);
  ExampleWriter writer(bus_, {"--name", "db", "--flush-to", dirs[0], "--flush-to", dirs[1]});
  BusClient client(bus_.address());
  for (const std::string method : {"Freeze", "Thaw"}) {
    ASSERT_TRUE(client.call_writer(writer.bus_name(), writer.object(), method, 9).ok());
    for (const auto& d : dirs) EXPECT_EQ(file_text(d + "/.hv-vss-writer-db"), "db " + method + " txn=9\n");
  }
}

TEST_P(WriterExampleTest, RegistersWhenTheAgentAppearsAndAgainWhenItComesBack) {
  ExampleWriter writer(bus_, {"--name", "db", "--optional", "--timeout", "2s"});
  ASSERT_TRUE(writer.wait_for("waiting"));
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    FakeAgent agent(bus_.address());
    auto registrations = agent.registrations(1);
    ASSERT_EQ(registrations.size(), 1u);
    EXPECT_EQ(registrations[0].sender, writer.bus_name());
    EXPECT_EQ(registrations[0].object, "/io/github/hvvss/WriterExample/db");
    EXPECT_EQ(registrations[0].object, writer.object());
    EXPECT_EQ(registrations[0].name, "db");
    EXPECT_EQ(registrations[0].required, false);
    EXPECT_EQ(registrations[0].timeout_usec, 2000000u);
    EXPECT_TRUE(writer.wait_for("registered", {{"name", "db"}, {"object", writer.object()}}));
  }
  EXPECT_TRUE(writer.wait_for("agent-gone"));
}

TEST_P(WriterExampleTest, RegistersAsRequiredWithTheAgentAlreadyThere) {
  FakeAgent agent(bus_.address());
  ExampleWriter writer(bus_);
  auto registrations = agent.registrations(1);
  ASSERT_EQ(registrations.size(), 1u);
  EXPECT_EQ(registrations[0].name, "example");
  EXPECT_EQ(registrations[0].required, true);
  EXPECT_EQ(registrations[0].timeout_usec, std::nullopt);
  EXPECT_TRUE(writer.wait_for("registered"));
}

TEST_P(WriterExampleTest, ExitsWithTheAgentsErrorWhenRegistrationIsRefused) {
  FakeAgent agent(bus_.address(), "io.github.hvvss.Error.WriterExists");
  ExampleWriter writer(bus_);
  EXPECT_EQ(writer.process().wait(), 1);
  EXPECT_NE(writer.stderr_text().find(
                "hv-vss-writer-example: io.github.hvvss.Error.WriterExists: refused by the test's fake agent"),
            std::string::npos)
      << writer.stderr_text();
}

TEST_P(WriterExampleTest, WriterRunningAsNobodyRegistersAndAnswersRoot) {
  FakeAgent agent(bus_.address());
  ExampleWriter writer(bus_, {}, RunAs::Nobody);
  ASSERT_EQ(agent.registrations(1).size(), 1u);
  ASSERT_TRUE(writer.wait_for("registered"));
  BusClient root(bus_.address());
  for (const std::string method : {"Check", "Freeze", "Thaw", "Abort"}) {
    Reply reply = root.call_writer(writer.bus_name(), writer.object(), method, 11);
    EXPECT_TRUE(reply.ok()) << method << ": " << reply.error_name << ": " << reply.error_message;
  }
}

TEST_P(WriterExampleTest, ExitsCleanlyOnSigtermAndSigint) {
  for (int sig : {SIGTERM, SIGINT}) {
    ExampleWriter writer(bus_);
    writer.process().kill(sig);
    EXPECT_EQ(writer.process().wait(), 0) << strsignal(sig);
  }
}

TEST(ShippedPolicy, LetsOnlyRootOwnTheAgentName) {
  PrivateBus bus(Policy::Shipped);
  std::vector<std::string> request{"call",
                                   "org.freedesktop.DBus",
                                   "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus",
                                   "RequestName",
                                   "su",
                                   "io.github.hvvss.Agent1",
                                   "0"};
  EXPECT_TRUE(denied(bus.busctl(RunAs::Nobody, request)));
  CommandResult root = bus.busctl(RunAs::Root, request);
  EXPECT_EQ(root.status, 0) << root.output;
  EXPECT_EQ(root.output, "u 1\n");  // DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
}

TEST(AllowAllPolicy, LetsNobodyOwnTheAgentName) {
  PrivateBus bus(Policy::AllowAll);
  CommandResult nobody =
      bus.busctl(RunAs::Nobody, {"call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                 "RequestName", "su", "io.github.hvvss.Agent1", "0"});
  EXPECT_EQ(nobody.status, 0) << nobody.output;
}

// What the agent calls on a writer, only the agent (root) may call: another user cannot make a
// writer freeze or thaw. The writer runs as nobody, so that sd-bus in the writer, which lets its
// own user call, leaves the verdict to the bus.
TEST_P(WriterExampleTest, OnlyRootMayCallAWriterUnderTheShippedPolicy) {
  ExampleWriter writer(bus_, {}, RunAs::Nobody);
  for (const std::string method : {"Check", "Freeze", "Thaw", "Abort"}) {
    SCOPED_TRACE(method);
    std::vector<std::string> call{"call", writer.bus_name(), writer.object(), "io.github.hvvss.Writer1", method, "t",
                                  "3"};
    CommandResult nobody = bus_.busctl(RunAs::Nobody, call);
    if (GetParam() == Policy::Shipped)
      EXPECT_TRUE(denied(nobody)) << nobody.output;
    else
      EXPECT_EQ(nobody.status, 0) << nobody.output;
    CommandResult root = bus_.busctl(RunAs::Root, call);
    EXPECT_EQ(root.status, 0) << root.output;
  }
}

TEST(ShippedPolicy, LetsEveryoneReadTheAgentAndAskToRegisterButOnlyRootControlIt) {
  PrivateBus bus(Policy::Shipped);
  FakeAgent agent(bus.address());
  auto agent_call = [](std::vector<std::string> method) {
    method.insert(method.begin(), {"call", "io.github.hvvss.Agent1", "/io/github/hvvss/Agent1"});
    return method;
  };
  const std::vector<std::vector<std::string>> open_to_all{
      {"introspect", "io.github.hvvss.Agent1", "/io/github/hvvss/Agent1"},
      agent_call({"org.freedesktop.DBus.Peer", "Ping"}),
      {"get-property", "io.github.hvvss.Agent1", "/io/github/hvvss/Agent1", "io.github.hvvss.Agent1", "State"},
      agent_call({"org.freedesktop.DBus.Properties", "GetAll", "s", "io.github.hvvss.Agent1"}),
      agent_call({"io.github.hvvss.Agent1", "ListWriters"}),
      agent_call({"io.github.hvvss.Agent1", "RegisterWriter", "osa{sv}", "/w", "w", "0"}),
      agent_call({"io.github.hvvss.Agent1", "UnregisterWriter", "s", "w"}),
  };
  const std::vector<std::vector<std::string>> root_only{
      agent_call({"io.github.hvvss.Agent1", "TestSnapshot", "t", "0"}),
      agent_call({"io.github.hvvss.Agent1", "Thaw"}),
      agent_call({"org.freedesktop.DBus.Properties", "Set", "ssv", "io.github.hvvss.Agent1", "State", "s", "x"}),
  };
  for (const auto& args : open_to_all) {
    CommandResult nobody = bus.busctl(RunAs::Nobody, args);
    EXPECT_EQ(nobody.status, 0) << args[0] << " " << args.back() << ": " << nobody.output;
  }
  for (const auto& args : root_only) {
    EXPECT_TRUE(denied(bus.busctl(RunAs::Nobody, args))) << args[4];
    // Set reaches the agent, which refuses it: the property is read-only.
    CommandResult root = bus.busctl(RunAs::Root, args);
    EXPECT_FALSE(denied(root)) << args[4] << ": " << root.output;
  }
}

// The real agent (on the simulator's idle host, with a scratch ext4 as its only filesystem).
class WriterWithAgentTest : public AgentTest, public ::testing::WithParamInterface<Policy> {
 protected:
  void SetUp() override {
    use({"ext4"});
    start_sim({"idle", "--hold-stdin"});
  }
  Process& start_agent_on_bus() { return start_agent({.env = bus_.env()}); }

  PrivateBus bus_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Policies, WriterWithAgentTest, ::testing::Values(Policy::Shipped, Policy::AllowAll),
                         [](const auto& info) { return policy_name(info.param); });

TEST_P(WriterWithAgentTest, RegistersWithTheAgentWhichListsItToEveryone) {
  ExampleWriter writer(bus_, {"--name", "db"});
  ASSERT_TRUE(writer.wait_for("waiting"));
  start_agent_on_bus();
  ASSERT_TRUE(writer.wait_for("registered", {{"name", "db"}}));
  CommandResult list = bus_.busctl(RunAs::Nobody, {"call", "io.github.hvvss.Agent1", "/io/github/hvvss/Agent1",
                                                   "io.github.hvvss.Agent1", "ListWriters"});
  EXPECT_EQ(list.output, "a(ssob) 1 \"db\" \"" + writer.bus_name() + "\" \"" + writer.object() + "\" true\n");
}

TEST_P(WriterWithAgentTest, RefusesNobodyRegisterWriter) {
  ExampleWriter writer(bus_, {"--name", "intruder"}, RunAs::Nobody);
  Process& agent = start_agent_on_bus();
  EXPECT_EQ(writer.process().wait(), 1);
  EXPECT_NE(writer.stderr_text().find("hv-vss-writer-example: org.freedesktop.DBus.Error.AccessDenied: "),
            std::string::npos)
      << writer.stderr_text();
  CommandResult list = bus_.busctl(RunAs::Root, {"call", "io.github.hvvss.Agent1", "/io/github/hvvss/Agent1",
                                                 "io.github.hvvss.Agent1", "ListWriters"});
  EXPECT_EQ(list.output, "a(ssob) 0\n");
  // The agent refused it (under either policy the bus lets RegisterWriter through), and said so.
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("uid 65534"), std::string::npos) << log;
  EXPECT_NE(log.find("may not call RegisterWriter"), std::string::npos) << log;
}

}  // namespace
}  // namespace hvvss::test
