// The Notifier against datagram sockets of the test's own: messages reach a path or an abstract
// socket, and a socket nobody reads neither blocks the caller nor loses READY=1, which arrives
// with the latest status (and a watchdog ping) once the socket drains. The Watchdog pings from
// the loop only when $WATCHDOG_USEC asks for it, for this process.
#include "agent/notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace hvvss {
namespace {

constexpr int kPatienceMs = 30000;

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sd_event_new(&loop_), 0);
    dir_ = std::filesystem::temp_directory_path() / "hv-vss-notify-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir_.data()));
  }
  void TearDown() override {
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (!path_.empty() && path_[0] == '/') unlink(path_.c_str());
    rmdir(dir_.c_str());
    sd_event_unref(loop_);
  }

  // Binds systemd's side at `address` (a path, or @name).
  void listen(const std::string& address) {
    path_ = address;
    addr_size_ = set_address(address);
    receiver_ = UniqueFd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(bind(receiver_.get(), reinterpret_cast<sockaddr*>(&addr_), addr_size_), 0) << std::strerror(errno);
  }

  socklen_t set_address(const std::string& address) {
    addr_ = {};
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, address.data(), address.size());
    bool abstract = address[0] == '@';
    if (abstract) addr_.sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + (abstract ? 0 : 1));
  }

  // Fills the receiver's queue from a socket of the test's own; returns how many fitted.
  int fill() {
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    int sent = 0;
    while (sendto(fd.get(), "FILLER=1", 8, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr_), addr_size_) == 8) ++sent;
    return errno == EAGAIN ? sent : -1;
  }

  std::string receive(bool wait = true) {
    pollfd pfd{receiver_.get(), POLLIN, 0};
    char buf[512] = {};
    if (poll(&pfd, 1, wait ? kPatienceMs : 0) != 1 || recv(receiver_.get(), buf, sizeof buf - 1, 0) <= 0) return {};
    return buf;
  }

  sd_event* loop_ = nullptr;
  std::string dir_, path_;
  sockaddr_un addr_{};
  socklen_t addr_size_ = 0;
  UniqueFd receiver_;
};

TEST_F(NotifierTest, DeliversEachMessageToAPathSocket) {
  listen(dir_ + "/notify");
  Notifier notifier(loop_, path_);
  notifier.notify("READY=1\nSTATUS=Registered; idle");
  notifier.notify("STATUS=Last request THAW answered HV_S_OK; idle");
  EXPECT_EQ(receive(), "READY=1\nSTATUS=Registered; idle");
  EXPECT_EQ(receive(), "STATUS=Last request THAW answered HV_S_OK; idle");
}

TEST_F(NotifierTest, DeliversToAnAbstractSocket) {
  listen("@hv-vss-notify-test-" + std::to_string(getpid()));
  Notifier notifier(loop_, path_);
  notifier.notify("READY=1");
  EXPECT_EQ(receive(), "READY=1");
}

TEST_F(NotifierTest, AFullSocketNeitherBlocksNorLosesReadyAndGetsTheLatestStatusOnceItDrains) {
  listen(dir_ + "/notify");
  ASSERT_GT(fill(), 0);
  Notifier notifier(loop_, path_);
  notifier.notify("READY=1\nSTATUS=Registered; idle");  // returns at once: the socket is full
  notifier.notify("STATUS=Last request FREEZE answered HV_S_OK; frozen");
  EXPECT_TRUE(notifier.pending());
  while (receive(false) == "FILLER=1") continue;
  ASSERT_GT(sd_event_run(loop_, UINT64_MAX), 0);  // the socket has room again
  EXPECT_FALSE(notifier.pending());
  EXPECT_EQ(receive(), "READY=1\nSTATUS=Last request FREEZE answered HV_S_OK; frozen");
}

TEST_F(NotifierTest, AWatchdogPingWhileTheSocketIsFullJoinsThePendingReadyAndStatusInsteadOfReplacingThem) {
  listen(dir_ + "/notify");
  ASSERT_GT(fill(), 0);
  Notifier notifier(loop_, path_);
  notifier.notify("READY=1\nSTATUS=Registered; idle");
  notifier.notify("WATCHDOG=1");
  notifier.notify("WATCHDOG=1");
  while (receive(false) == "FILLER=1") continue;
  ASSERT_GT(sd_event_run(loop_, UINT64_MAX), 0);
  EXPECT_EQ(receive(), "READY=1\nSTATUS=Registered; idle\nWATCHDOG=1");
}

TEST_F(NotifierTest, TheWatchdogPingsFromTheLoopWhileWatchdogUsecAsksForIt) {
  listen(dir_ + "/notify");
  Notifier notifier(loop_, path_);
  Watchdog watchdog(loop_, &notifier);
  ASSERT_EQ(setenv("WATCHDOG_USEC", "20000", 1), 0);
  ASSERT_TRUE(watchdog.start());
  ASSERT_TRUE(watchdog.active());
  for (int ping = 0; ping < 3; ++ping) {
    ASSERT_GT(sd_event_run(loop_, uint64_t{kPatienceMs} * 1000), 0);
    EXPECT_EQ(receive(), "WATCHDOG=1");
  }
}

TEST_F(NotifierTest, WithoutWatchdogUsecTheWatchdogArmsNoTimer) {
  listen(dir_ + "/notify");
  Notifier notifier(loop_, path_);
  Watchdog watchdog(loop_, &notifier);
  ASSERT_TRUE(watchdog.start());
  EXPECT_FALSE(watchdog.active());
}

TEST_F(NotifierTest, AWatchdogMeantForAnotherProcessArmsNoTimer) {
  listen(dir_ + "/notify");
  Notifier notifier(loop_, path_);
  Watchdog watchdog(loop_, &notifier);
  ASSERT_EQ(setenv("WATCHDOG_USEC", "20000", 1), 0);
  ASSERT_EQ(setenv("WATCHDOG_PID", std::to_string(getppid()).c_str(), 1), 0);
  ASSERT_TRUE(watchdog.start());
  EXPECT_FALSE(watchdog.active());
}

TEST_F(NotifierTest, AnAddressThatIsNeitherAPathNorAnAbstractNameTurnsNotificationsOff) {
  Notifier notifier(loop_, "vsock:2:1234");
  notifier.notify("READY=1");
  EXPECT_FALSE(notifier.pending());
}

}  // namespace
}  // namespace hvvss
