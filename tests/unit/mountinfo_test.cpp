#include "plugins/fsfreeze/mountinfo.h"

#include <gtest/gtest.h>

namespace hvvss::fsfreeze {
namespace {

std::vector<MountEntry> load(const std::string& name) {
  std::vector<MountEntry> mounts;
  Status read = read_mountinfo(std::string(FIXTURES_DIR) + "/mountinfo/" + name, &mounts);
  EXPECT_TRUE(read) << read.message();
  return mounts;
}

const MountEntry& at(const std::vector<MountEntry>& mounts, const std::string& mount_point) {
  for (const auto& m : mounts)
    if (m.mount_point == mount_point) return m;
  throw std::runtime_error("no mount at " + mount_point);
}

TEST(Mountinfo, ParsesEveryFieldOfALine) {
  auto mounts = load("server.txt");
  ASSERT_EQ(mounts.size(), 16u);
  const auto& pg = at(mounts, "/var/lib/postgresql");
  EXPECT_EQ(pg.mount_id, 33);
  EXPECT_EQ(pg.parent_id, 26);
  EXPECT_EQ(pg.dev(), "0:40");
  EXPECT_EQ(pg.root, "/@pg");
  EXPECT_EQ(pg.fstype, "btrfs");
  EXPECT_EQ(pg.source, "/dev/sdb");
  EXPECT_EQ(pg.mount_options, "rw,relatime");
  EXPECT_EQ(pg.super_options, "rw,space_cache=v2,subvolid=256,subvol=/@pg");
}

TEST(Mountinfo, UnescapesOctalInPaths) {
  auto mounts = load("server.txt");
  EXPECT_EQ(at(mounts, "/mnt/xfs backup").fstype, "xfs");
}

TEST(Mountinfo, HandlesLinesWithoutOptionalFields) {
  auto mounts = load("server.txt");
  EXPECT_EQ(at(mounts, "/mnt/nfs").fstype, "nfs4");
  EXPECT_EQ(at(mounts, "/mnt/nfs").source, "server:/export");
}

TEST(Mountinfo, ReadOnlyComesFromSuperOptionsNotMountOptions) {
  auto mounts = load("server.txt");
  EXPECT_TRUE(at(mounts, "/mnt/archive").read_only_super());
  EXPECT_FALSE(at(mounts, "/mnt/ro-bind").read_only_super());  // a ro mount of a rw filesystem
  EXPECT_FALSE(at(mounts, "/").read_only_super());             // errors=remount-ro is not ro
}

TEST(Mountinfo, RejectsTruncatedLinesWithTheirLineNumber) {
  std::vector<MountEntry> mounts;
  Status parsed = parse_mountinfo("26 1 254:1 / / rw - ext4 /dev/vda rw\n27 26 0:24 / /run rw\n", &mounts);
  EXPECT_EQ(parsed.message(), "line 2: too few fields");
  parsed = parse_mountinfo("x 1 254:1 / / rw - ext4 /dev/vda rw\n", &mounts);
  EXPECT_EQ(parsed.message(), "line 1: bad mount id or device number");
}

TEST(Mountinfo, EscapeAndUnescapeRoundTrip) {
  std::string path = "/a b\tc\\d\ne";
  EXPECT_EQ(escape_octal(path), "/a\\040b\\011c\\134d\\012e");
  EXPECT_EQ(unescape_octal(escape_octal(path)), path);
  EXPECT_EQ(unescape_octal("trailing\\04"), "trailing\\04");  // not a full escape: kept
}

}  // namespace
}  // namespace hvvss::fsfreeze
