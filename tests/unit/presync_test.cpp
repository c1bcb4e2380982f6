// The presync's decisions against a fake kernel: when it flushes, in what order and on which
// thread, how often, and when it stops.
#include "plugins/fsfreeze/presync.h"

#include <gtest/gtest.h>
#include <cerrno>
#include <thread>
#include <utility>
#include <vector>

namespace hvvss::fsfreeze {
namespace {

constexpr long kMuchDirtyKib = 512L * 1024;
constexpr long kLittleDirtyKib = 1024;

const std::vector<PresyncTarget> kTargets = {{10, "/a"}, {11, "/b"}, {12, "/c"}, {13, "/d"}};

Deadline far_away() { return Deadline::after(std::chrono::hours(1)); }

// Records every syncfs (which descriptor, on which thread) and answers Dirty from a script: the
// next value for each reading, the last one from then on.
struct FakeKernel {
  explicit FakeKernel(std::vector<long> dirty) : dirty_kib(std::move(dirty)) {}

  std::vector<long> dirty_kib;
  size_t readings = 0;
  std::vector<int> synced;
  std::vector<std::thread::id> threads;
  std::function<int(int fd)> on_syncfs = [](int) { return 0; };

  PresyncKernel kernel() {
    return {[this](int fd) {
              synced.push_back(fd);
              threads.push_back(std::this_thread::get_id());
              return on_syncfs(fd);
            },
            [this] { return dirty_kib[std::min(readings++, dirty_kib.size() - 1)]; }};
  }
};

TEST(Presync, IsSkippedWhenTheSystemHasLittleDirtyData) {
  FakeKernel fake({kLittleDirtyKib});
  PresyncReport report;
  ASSERT_TRUE(presync(kTargets, far_away(), &report, fake.kernel()));
  EXPECT_TRUE(fake.synced.empty());
  EXPECT_FALSE(report.ran());
  EXPECT_EQ(report.passes, 0);
}

TEST(Presync, SyncsEachFilesystemOnceInFreezeOrderOneAtATimeOnTheCallingThread) {
  FakeKernel fake({kMuchDirtyKib, kLittleDirtyKib});
  PresyncReport report;
  ASSERT_TRUE(presync(kTargets, far_away(), &report, fake.kernel()));
  EXPECT_EQ(fake.synced, (std::vector<int>{10, 11, 12, 13}));
  for (const auto& id : fake.threads) EXPECT_EQ(id, std::this_thread::get_id()) << "a syncfs ran on another thread";
  EXPECT_EQ(report.passes, 1);
  EXPECT_EQ(report.synced, 4u);
  EXPECT_FALSE(report.timed_out);
}

TEST(Presync, RepeatsWhileMuchIsStillDirtyButAtMostThreePasses) {
  FakeKernel fake({kMuchDirtyKib});
  PresyncReport report;
  ASSERT_TRUE(presync(kTargets, far_away(), &report, fake.kernel()));
  EXPECT_EQ(report.passes, 3);
  EXPECT_EQ(fake.synced.size(), 12u);
}

TEST(Presync, StartsNoSyncfsWhenItsTimeIsAlreadyUp) {
  FakeKernel fake({kMuchDirtyKib});
  PresyncReport report;
  ASSERT_TRUE(presync(kTargets, Deadline(Clock::now()), &report, fake.kernel()));
  EXPECT_TRUE(fake.synced.empty());
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.left, kTargets.size());
  EXPECT_NE(report.summary().find("4 filesystem(s) left to the freeze's own flush"), std::string::npos)
      << report.summary();
}

TEST(Presync, ASyncfsRunningWhenTheTimeIsUpEndsThePresync) {
  FakeKernel fake({kMuchDirtyKib});
  const Deadline stop_by = Deadline::after(std::chrono::milliseconds(1));
  // The first syncfs returns only once the presync's time is up, as a long flush would.
  fake.on_syncfs = [&stop_by](int) {
    while (!stop_by.expired()) std::this_thread::yield();
    return 0;
  };
  PresyncReport report;
  ASSERT_TRUE(presync(kTargets, stop_by, &report, fake.kernel()));
  EXPECT_EQ(fake.synced, (std::vector<int>{10}));
  EXPECT_TRUE(report.timed_out);
  EXPECT_EQ(report.left, 3u);
}

TEST(Presync, AFailedSyncfsFailsThePresyncNamingTheMountAndStopsIt) {
  FakeKernel fake({kMuchDirtyKib});
  fake.on_syncfs = [](int fd) { return fd == 11 ? EIO : 0; };
  PresyncReport report;
  Status status = presync(kTargets, far_away(), &report, fake.kernel());
  ASSERT_FALSE(status);
  EXPECT_NE(status.message().find("syncfs /b"), std::string::npos) << status.message();
  EXPECT_EQ(fake.synced, (std::vector<int>{10, 11}));
}

}  // namespace
}  // namespace hvvss::fsfreeze
