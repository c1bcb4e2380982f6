// The channel's open() on what it must refuse: a character device that is not the VSS device
// (identified through sysfs before it is opened for writing) and a socket that takes no more
// connections (refused at once rather than waited for).
#include "agent/device.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace hvvss {
namespace {

TEST(Device, RefusesAnotherCharacterDeviceAndSaysWhatItIs) {
  Device device;
  Status s = device.open("/dev/null");  // there in every build chroot, unlike /dev/kmsg
  ASSERT_FALSE(s);
  // sysfs names the device; a chroot without /sys leaves only its numbers to say.
  std::string what = std::filesystem::exists("/sys/dev/char/1:3") ? "the character device /dev/null (1:3, class mem)"
                                                                  : "a character device (1:3)";
  EXPECT_NE(s.message().find("/dev/null is " + what), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not the Hyper-V VSS device"), std::string::npos) << s.message();
  EXPECT_FALSE(device.is_open());
}

TEST(Device, RefusesAFileThatIsNeitherADeviceNorASocket) {
  Device device;
  Status s = device.open("/proc/self/status");
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("is neither a character device nor a socket"), std::string::npos) << s.message();
}

TEST(Device, ASocketWhoseBacklogIsFullIsRefusedAtOnce) {
  std::string dir = std::filesystem::temp_directory_path() / "hv-vss-device-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir.data()));
  std::string path = dir + "/sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener.get(), 0), 0);
  std::vector<UniqueFd> queued;  // never accepted
  for (;;) {
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) break;
    queued.push_back(std::move(fd));
  }
  ASSERT_EQ(errno, EAGAIN);
  Device device;
  Status s = device.open(path);
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("its listen backlog is full"), std::string::npos) << s.message();
  unlink(path.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace hvvss
