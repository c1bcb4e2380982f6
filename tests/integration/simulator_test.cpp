// The simulator judged against fake daemons written here, so that it is known to catch the
// mistakes it exists to catch: a daemon that answers one request twice must fail the scenario.
#include "agent/protocol.h"
#include "tests/integration/harness.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <filesystem>

namespace hvvss::test {
namespace {

// Connects to the simulator, registers, and answers every request `copies` times with HV_S_OK,
// until the simulator hangs up.
void fake_daemon(const std::string& socket_path, int copies) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  Frame hello = encode_request(static_cast<uint8_t>(Op::Register1));
  ASSERT_EQ(send(fd.get(), hello.data(), hello.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hello.size()));
  for (;;) {
    pollfd pfd{fd.get(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kPatience).count())) != 1) return;
    std::byte buffer[64];
    ssize_t n = recv(fd.get(), buffer, sizeof buffer, 0);
    if (n <= 0) return;
    if (n != static_cast<ssize_t>(kFrameSize)) continue;  // the 4-byte version reply
    Frame reply = encode_reply(static_cast<uint8_t>(buffer[0]), HvStatus::Ok);
    for (int i = 0; i < copies; ++i)
      if (send(fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reply.size())) return;
  }
}

struct Case {
  std::string scenario;
  int copies;    // how many times the fake daemon answers each request
  int failures;  // what the simulator must count; -1: at least one (where a duplicate lands
                 // among later requests depends on timing, as with the kernel)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.scenario << ", answered " << c.copies << "x"; }

class SimulatorTest : public ::testing::TestWithParam<Case> {};

TEST_P(SimulatorTest, CountsEveryReplyThatNoRequestWaitsFor) {
  const Case& c = GetParam();
  std::string dir =
      Scratch::root() + "/sim-" + std::to_string(getpid()) + "-" + c.scenario + "-" + std::to_string(c.copies);
  std::filesystem::create_directories(dir);
  {
    Process sim({sim_bin(), "--socket", dir + "/sock", c.scenario, "--hold", "0", "--linger", "1"}, dir + "/sim.err");
    ASSERT_TRUE(sim.read_until({"\"listening\""}));
    fake_daemon(dir + "/sock", c.copies);
    auto done = sim.read_until({"\"event\":\"done\""});
    ASSERT_TRUE(done);
    if (c.failures >= 0)
      EXPECT_EQ(json_field(*done, "failures"), std::to_string(c.failures)) << *done;
    else
      EXPECT_NE(json_field(*done, "failures"), "0") << *done;
    EXPECT_EQ(sim.wait(), c.failures == 0 ? 0 : 1);
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Daemons, SimulatorTest,
                         ::testing::Values(Case{"backup", 1, 0},
                                           // The duplicate of the only reply is caught while the device lingers.
                                           Case{"thaw-idle", 2, 1}, Case{"backup", 2, -1}),
                         [](const auto& info) {
                           return info.param.scenario.substr(0, 4) + std::to_string(info.param.copies);
                         });

}  // namespace
}  // namespace hvvss::test
