// The fsfreeze participant called directly, on real loop-mounted filesystems that each test
// creates and always removes: what it freezes, through which mount, and what it does first.
#include "plugins/fsfreeze/fsfreeze.h"
#include "tests/integration/harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <fstream>
#include <memory>

namespace hvvss::test {
namespace {

using fsfreeze::FsFreeze;

std::unique_ptr<FsFreeze> only(const Scratch& scratch, const std::vector<std::string>& mounts,
                               const std::string& mountinfo = "/proc/self/mountinfo") {
  fsfreeze::Settings settings;
  settings.filters.only_mounts = mounts;
  settings.mountinfo_path = mountinfo;
  return std::make_unique<FsFreeze>(settings, IntentRecord(scratch.dir() + "/run"));
}

// Unmounts a bind mount when the test ends, however it ends.
struct BindMount {
  BindMount(const std::string& from, const std::string& onto) : onto(onto) {
    run_capture("mount --bind " + from + " " + onto);
  }
  ~BindMount() { run_capture("umount " + onto); }
  std::string onto;
};

TEST(FsFreeze, AMountPointCoveredByAnotherMountIsNeverFrozenThroughIt) {
  Scratch scratch({"ext4", "xfs"});
  const std::string ext4 = scratch.mounts()[0], xfs = scratch.mounts()[1];
  // The mount table as the plan sees it, read before the xfs is bound over the ext4's mount point.
  std::string table = scratch.dir() + "/mountinfo";
  std::ofstream(table) << run_capture("cat /proc/self/mountinfo");
  BindMount cover(xfs, ext4);
  auto fs = only(scratch, {ext4}, table);
  Outcome frozen = fs->freeze(Deadline::after(kPatience));
  Outcome thawed = fs->thaw(Deadline::after(kPatience));
  EXPECT_FALSE(frozen.ok()) << "froze the xfs in place of the ext4: " << frozen.detail;
  EXPECT_NE(frozen.detail.find(ext4 + " is covered by another mount"), std::string::npos) << frozen.detail;
  EXPECT_TRUE(thawed.ok()) << thawed.detail;
}

TEST(FsFreeze, DirtyDataIsFlushedBeforeTheFreeze) {
  Scratch scratch({"ext4"});
  {
    UniqueFd fd(open((scratch.mounts()[0] + "/dirty").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    std::string mib(1 << 20, 'x');
    for (int i = 0; i < 64; ++i) ASSERT_EQ(write(fd.get(), mib.data(), mib.size()), static_cast<ssize_t>(mib.size()));
  }
  auto fs = only(scratch, scratch.mounts());
  Outcome frozen = fs->freeze(Deadline::after(kPatience));
  Outcome thawed = fs->thaw(Deadline::after(kPatience));
  ASSERT_TRUE(frozen.ok()) << frozen.detail;
  EXPECT_NE(frozen.detail.find("flushed first"), std::string::npos) << frozen.detail;
  EXPECT_TRUE(thawed.ok()) << thawed.detail;
}

}  // namespace
}  // namespace hvvss::test
