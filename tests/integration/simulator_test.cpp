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

class SimulatorTest : public ::testing::TestWithParam<int> {};

TEST_P(SimulatorTest, FailsADaemonThatAnswersOneRequestTwiceAndPassesOneThatAnswersOnce) {
  int copies = GetParam();
  std::string dir = Scratch::root() + "/sim-" + std::to_string(getpid()) + "-" + std::to_string(copies);
  std::filesystem::create_directories(dir);
  {
    Process sim({sim_bin(), "--socket", dir + "/sock", "backup", "--hold", "0", "--linger", "1"}, dir + "/sim.err");
    ASSERT_TRUE(sim.read_until({"\"listening\""}));
    fake_daemon(dir + "/sock", copies);
    std::string timeline;
    while (auto line = sim.read_line()) timeline += *line + "\n";
    EXPECT_EQ(sim.wait(), copies == 1 ? 0 : 1) << timeline;
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Copies, SimulatorTest, ::testing::Values(1, 2));

}  // namespace
}  // namespace hvvss::test
