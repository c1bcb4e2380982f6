#include "plugins/fsfreeze/targets.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <map>

namespace hvvss::fsfreeze {
namespace {

std::vector<MountEntry> load(const std::string& name) {
  std::vector<MountEntry> mounts;
  Status read = read_mountinfo(std::string(FIXTURES_DIR) + "/mountinfo/" + name, &mounts);
  EXPECT_TRUE(read) << read.message();
  return mounts;
}

LoopBackingFiles no_loops() {
  return [](unsigned, unsigned) { return std::vector<std::string>{}; };
}

LoopBackingFiles loops(const std::map<std::string, std::vector<std::string>>& backing) {
  return [backing](unsigned major, unsigned minor) {
    auto it = backing.find(std::to_string(major) + ":" + std::to_string(minor));
    return it == backing.end() ? std::vector<std::string>{} : it->second;
  };
}

std::vector<std::string> order(const Plan& plan) {
  std::vector<std::string> out;
  for (const auto& t : plan.targets) out.push_back(t.mount.mount_point);
  return out;
}

std::string reason(const Plan& plan, const std::string& mount_point) {
  for (const auto& s : plan.skipped)
    if (s.mount_point == mount_point) return s.reason;
  return "";
}

TEST(Targets, OneTargetPerSuperblockRootLastReverseMountOrder) {
  Plan plan = plan_targets(load("server.txt"), {}, no_loops());
  EXPECT_TRUE(plan.errors.empty());
  // btrfs /srv/data and its subvolume share 0:40; xfs is mounted twice (8:17).
  EXPECT_EQ(order(plan),
            (std::vector<std::string>{"/mnt/ro-bind", "/srv/image", "/mnt/xfs backup", "/srv/data", "/boot", "/"}));
}

TEST(Targets, PrefersTheMountOfTheFilesystemRoot) {
  Plan plan = plan_targets(load("server.txt"), {}, no_loops());
  for (const auto& t : plan.targets) {
    if (t.mount.fstype == "xfs") {
      EXPECT_EQ(t.mount.root, "/");
    }
  }
}

TEST(Targets, SkipsReadOnlyAndUnfreezableBlockFilesystemsWithAReason) {
  Plan plan = plan_targets(load("server.txt"), {}, no_loops());
  EXPECT_EQ(reason(plan, "/mnt/archive"), "read-only filesystem");
  EXPECT_EQ(reason(plan, "/boot/efi"), "vfat is not a freezable type");
  EXPECT_EQ(reason(plan, "/tmp"), "");  // virtual filesystems are not even worth a mention
  for (const auto& t : plan.targets) {
    EXPECT_NE(t.mount.fstype, "tmpfs");
    EXPECT_NE(t.mount.fstype, "overlay");
    EXPECT_NE(t.mount.fstype, "nfs4");
  }
}

TEST(Targets, ExcludeGlobsSkipMatchingMountPoints) {
  Filters filters;
  filters.exclude_globs = {"/mnt/*", "/srv/d*"};
  Plan plan = plan_targets(load("server.txt"), filters, no_loops());
  EXPECT_EQ(order(plan), (std::vector<std::string>{"/srv/image", "/boot", "/"}));
  EXPECT_EQ(reason(plan, "/srv/data"), "excluded by ExcludeMounts=/srv/d*");
}

TEST(Targets, AllowListFreezesOnlyWhatItNames) {
  Filters filters;
  filters.only_mounts = {"/srv/exports/", "/boot/efi"};
  Plan plan = plan_targets(load("server.txt"), filters, no_loops());
  EXPECT_TRUE(plan.errors.empty());
  // Listed explicitly, vfat becomes a target: the admin asked for it and will hear if it fails.
  EXPECT_EQ(order(plan), (std::vector<std::string>{"/srv/exports", "/boot/efi"}));
}

TEST(Targets, AllowListNamingTwoMountsOfOneFilesystemFreezesItOnceWithoutError) {
  // /srv/data and /var/lib/postgresql are the btrfs 0:40 and a subvolume of it (found by fuzzing:
  // the second one was reported as "not a visible mount point").
  Filters filters;
  filters.only_mounts = {"/srv/data", "/var/lib/postgresql"};
  Plan plan = plan_targets(load("server.txt"), filters, no_loops());
  EXPECT_TRUE(plan.errors.empty()) << plan.errors.front();
  EXPECT_EQ(order(plan), (std::vector<std::string>{"/srv/data"}));
}

TEST(Targets, AllowListNeverFallsBackToTheContainingFilesystem) {
  Filters filters;
  filters.only_mounts = {"/srv/not-a-mount"};
  Plan plan = plan_targets(load("server.txt"), filters, no_loops());
  EXPECT_TRUE(plan.targets.empty());
  ASSERT_EQ(plan.errors.size(), 1u);
  EXPECT_NE(plan.errors[0].find("/srv/not-a-mount"), std::string::npos);
}

TEST(Targets, ShadowedMountIsNotReachableAndNotFrozen) {
  Filters filters;
  filters.only_mounts = {"/data"};
  Plan plan = plan_targets(load("shadowed.txt"), filters, no_loops());
  ASSERT_EQ(plan.targets.size(), 1u);
  EXPECT_EQ(plan.targets[0].mount.fstype, "xfs");  // the topmost mount at /data
}

// A private namespace (ProtectHome=read-only) with /root bound read-only onto itself: a
// filesystem mounted on /root/late afterwards propagates twice, onto / (hidden under the bind)
// and onto the bind, in either order in the table.
TEST(Targets, AMountHiddenUnderABindIsNotTheOneFrozenWhateverTheTableOrder) {
  const char* root = "83 1 254:1 / / rw - ext4 /dev/vda rw\n84 83 254:1 /root /root ro - ext4 /dev/vda rw\n";
  const char* reached = "88 84 7:1 / /root/late rw - ext4 /dev/loop1 rw\n";
  const char* hidden = "87 83 7:1 / /root/late rw - ext4 /dev/loop1 rw\n";
  for (const std::string& text :
       {fmt::format("{}{}{}", root, reached, hidden), fmt::format("{}{}{}", root, hidden, reached)}) {
    std::vector<MountEntry> mounts;
    ASSERT_TRUE(parse_mountinfo(text, &mounts));
    Plan plan = plan_targets(mounts, {}, no_loops());
    ASSERT_EQ(order(plan), (std::vector<std::string>{"/root/late", "/"})) << text;
    EXPECT_EQ(plan.targets[0].mount.mount_id, 88) << text;
  }
}

TEST(Targets, AMountUnderACoveredDirectoryIsNotReachable) {
  // /a/b sits on the first /a; a second filesystem was mounted over /a later.
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(
      parse_mountinfo("26 1 254:1 / / rw - ext4 /dev/vda rw\n"
                      "40 26 8:1 / /a rw - ext4 /dev/sda1 rw\n"
                      "41 40 8:2 / /a/b rw - ext4 /dev/sda2 rw\n"
                      "42 40 8:3 / /a rw - xfs /dev/sda3 rw\n",
                      &mounts));
  Filters filters;
  filters.only_mounts = {"/a", "/a/b"};
  Plan plan = plan_targets(mounts, filters, no_loops());
  ASSERT_EQ(plan.targets.size(), 1u);
  EXPECT_EQ(plan.targets[0].mount.fstype, "xfs");
  ASSERT_EQ(plan.errors.size(), 1u);
  EXPECT_NE(plan.errors[0].find("/a/b, which is not a visible mount point"), std::string::npos) << plan.errors[0];
}

TEST(Targets, ANamespaceRootThatIsItsOwnParentIsReached) {
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(
      parse_mountinfo("26 26 254:1 / / rw - ext4 /dev/vda rw\n40 26 8:1 / /a rw - ext4 /dev/sda1 rw\n", &mounts));
  EXPECT_EQ(order(plan_targets(mounts, {}, no_loops())), (std::vector<std::string>{"/a", "/"}));
}

TEST(Targets, PathsNotUnderTheRootNeitherHangNorHoldAnything) {
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(
      parse_mountinfo("26 1 254:1 / / rw - ext4 /dev/vda rw\n40 26 7:1 / a rw - ext4 /dev/loop1 rw\n", &mounts));
  Plan plan = plan_targets(mounts, {}, loops({{"7:1", {"image.img", ""}}}));
  EXPECT_EQ(order(plan), (std::vector<std::string>{"a", "/"}));
}

TEST(Targets, LoopBackedFilesystemFreezesBeforeItsBackingFilesystem) {
  // /srv/image (7:0) is backed by a file on /srv/data (btrfs), which mountinfo lists earlier
  // and the default order would freeze first; and a loop on / must go before /.
  auto mounts = load("server.txt");
  auto backing = loops({{"7:0", {"/srv/data/images/disk.img"}}, {"8:1", {"/var/boot.img"}}});
  Plan plan = plan_targets(mounts, {}, backing);
  auto o = order(plan);
  auto pos = [&](const std::string& mp) { return std::find(o.begin(), o.end(), mp) - o.begin(); };
  EXPECT_LT(pos("/srv/image"), pos("/srv/data"));
  EXPECT_LT(pos("/boot"), pos("/"));
  EXPECT_EQ(o.back(), "/");
}

TEST(Targets, IndependentFilesystemsShareAWaveAndRootHasTheLastOne) {
  auto mounts = load("server.txt");
  Plan plan = plan_targets(mounts, {}, loops({{"7:0", {"/srv/data/images/disk.img"}}}));
  std::map<std::string, int> wave;
  for (const auto& t : plan.targets) wave[t.mount.mount_point] = t.wave;
  EXPECT_EQ(wave["/srv/image"], 0);
  EXPECT_EQ(wave["/boot"], 0);
  EXPECT_EQ(wave["/srv/data"], 1);  // holds the image of /srv/image
  EXPECT_EQ(wave["/"], 2);
  for (size_t i = 1; i < plan.targets.size(); ++i) EXPECT_LE(plan.targets[i - 1].wave, plan.targets[i].wave);
}

TEST(Targets, LoopBackingFileOnTheSameSuperblockAddsNoEdge) {
  auto mounts = load("server.txt");
  Plan plan = plan_targets(mounts, {}, loops({{"7:0", {"/srv/image/nested.img"}}}));
  EXPECT_EQ(plan.targets.size(), 6u);
}

TEST(Targets, BackingFileChainOrdersInnermostFirst) {
  // c on a file in b, b on a file in a: freeze c, b, a whatever the mount order.
  std::string text =
      "26 1 254:1 / / rw - ext4 /dev/vda rw\n"
      "40 26 7:1 / /a rw - ext4 /dev/loop1 rw\n"
      "41 26 7:2 / /b rw - xfs /dev/loop2 rw\n"
      "42 26 7:3 / /c rw - btrfs /dev/loop3 rw\n";
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(parse_mountinfo(text, &mounts));
  Filters filters;
  filters.only_mounts = {"/a", "/b", "/c"};
  auto backing = loops({{"7:2", {"/a/b.img"}}, {"7:3", {"/b/c.img"}}, {"7:1", {"/a.img"}}});
  EXPECT_EQ(order(plan_targets(mounts, filters, backing)), (std::vector<std::string>{"/c", "/b", "/a"}));
  // Reverse mount order alone would give the same; flip the mount order to prove the edges work.
  std::swap(mounts[1], mounts[3]);
  EXPECT_EQ(order(plan_targets(mounts, filters, backing)), (std::vector<std::string>{"/c", "/b", "/a"}));
}

TEST(Targets, RootOnALoopDeviceFreezesBeforeTheFilesystemHoldingItsImage) {
  // / in an image file on /host (as Wubi or a live system has it): freezing / after /host would
  // wait forever for its own writes into the frozen /host, so here / is not last.
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(
      parse_mountinfo("20 1 7:0 / / rw - ext4 /dev/loop0 rw\n"
                      "21 20 8:1 / /host rw - ext4 /dev/sda1 rw\n"
                      "22 20 8:2 / /boot rw - ext4 /dev/sda2 rw\n",
                      &mounts));
  Plan plan = plan_targets(mounts, {}, loops({{"7:0", {"/host/root.img"}}}));
  EXPECT_EQ(order(plan), (std::vector<std::string>{"/boot", "/", "/host"}));
  std::map<std::string, int> wave;
  for (const auto& t : plan.targets) wave[t.mount.mount_point] = t.wave;
  EXPECT_LT(wave["/boot"], wave["/"]);
  EXPECT_LT(wave["/"], wave["/host"]);
}

TEST(Targets, BackingFileCycleStillFreezesRootLastInAWaveOfItsOwn) {
  // Stale backing paths can make up a cycle (/a's image on /b, /b's on /a); found by fuzzing: / went
  // first, in the wave of /b.
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(
      parse_mountinfo("26 1 254:1 / / rw - ext4 /dev/vda rw\n"
                      "40 26 7:1 / /a rw - ext4 /dev/loop1 rw\n"
                      "41 26 7:2 / /b rw - ext4 /dev/loop2 rw\n",
                      &mounts));
  Plan plan = plan_targets(mounts, {}, loops({{"7:1", {"/b/a.img"}}, {"7:2", {"/a/b.img"}}}));
  ASSERT_EQ(plan.targets.size(), 3u);
  EXPECT_EQ(plan.targets[2].mount.mount_point, "/");
  EXPECT_LT(plan.targets[1].wave, plan.targets[2].wave);
}

TEST(Targets, MadeUpBackingFileCycleKeepsEveryOtherStackingEdge) {
  // /p and /q hold each other's images (stale paths); /b holds an image of /p and /a one of /b.
  // Found by fuzzing: breaking the cycle at the first target left, /a, froze /a before /b.
  std::vector<MountEntry> mounts;
  ASSERT_TRUE(
      parse_mountinfo("40 1 7:1 / /p rw - ext4 /dev/loop1 rw\n"
                      "41 1 7:2 / /q rw - ext4 /dev/loop2 rw\n"
                      "42 1 7:3 / /b rw - ext4 /dev/loop3 rw\n"
                      "43 1 7:4 / /a rw - ext4 /dev/loop4 rw\n",
                      &mounts));
  auto backing = loops({{"7:1", {"/q/p.img", "/b/p.img"}}, {"7:2", {"/p/q.img"}}, {"7:3", {"/a/b.img"}}});
  Plan plan = plan_targets(mounts, {}, backing);
  std::map<std::string, int> wave;
  for (const auto& t : plan.targets) wave[t.mount.mount_point] = t.wave;
  EXPECT_LT(wave["/p"], wave["/b"]);
  EXPECT_LT(wave["/b"], wave["/a"]);
  auto o = order(plan);
  auto pos = [&](const std::string& mp) { return std::find(o.begin(), o.end(), mp) - o.begin(); };
  EXPECT_LT(pos("/p"), pos("/b"));
  EXPECT_LT(pos("/b"), pos("/a"));
}

// A bind mount of a directory on `/` is the root filesystem: freezing it hangs the machine.
std::vector<MountEntry> root_bound_elsewhere() {
  std::vector<MountEntry> mounts;
  EXPECT_TRUE(
      parse_mountinfo("26 1 254:1 / / rw - ext4 /dev/vda rw\n"
                      "40 26 254:1 /srv /mnt/bind rw - ext4 /dev/vda rw\n"
                      "41 26 7:1 / /a rw - ext4 /dev/loop1 rw\n",
                      &mounts));
  return mounts;
}

TEST(Targets, AnAllowListedBindMountOfTheRootFilesystemIsRefusedUnlessRootIsListed) {
  Filters filters;
  filters.only_mounts = {"/mnt/bind", "/a"};
  Plan plan = plan_targets(root_bound_elsewhere(), filters, no_loops());
  EXPECT_EQ(order(plan), (std::vector<std::string>{"/a"}));
  ASSERT_EQ(plan.errors.size(), 1u);
  EXPECT_EQ(plan.errors[0],
            "OnlyMounts= names /mnt/bind, which is on the root filesystem (a bind mount of /): list / itself to "
            "freeze it");
}

TEST(Targets, TheRootFilesystemGoesLastAloneHoweverItIsReached) {
  Filters filters;
  filters.only_mounts = {"/mnt/bind", "/a", "/"};
  Plan plan = plan_targets(root_bound_elsewhere(), filters, no_loops());
  EXPECT_TRUE(plan.errors.empty());
  ASSERT_EQ(plan.targets.size(), 2u);
  EXPECT_EQ(plan.targets.back().mount.dev(), "254:1");
  EXPECT_GT(plan.targets.back().wave, plan.targets.front().wave);
}

}  // namespace
}  // namespace hvvss::fsfreeze
