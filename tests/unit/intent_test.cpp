// The intent record (one file per filesystem in RUNTIME_DIR/intent) and the runtime-directory
// lock, on real files in a scratch directory. A record is only ever what the agent wrote: anything
// else there (too many or too large entries, a FIFO, a symlink) is an error that returns at once,
// never "no record" and never a hang; a second agent cannot take the lock of a live one.
#include "agent/intent.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace hvvss {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A scratch directory of the test's own, removed afterwards.
class ScratchDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/hv-vss-intent-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr) << std::strerror(errno);
    dir_ = templ;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path dir_;
};

using RuntimeDirLock = ScratchDir;

class Intent : public ScratchDir {
 protected:
  IntentRecord record() const { return IntentRecord(dir_); }
  fs::path entry(const std::string& dev) const { return record().dir() / dev; }

  // Reads the record; EXPECTs the read to return within a second.
  Status read_promptly(std::vector<IntentRecord::Entry>* entries) const {
    auto start = std::chrono::steady_clock::now();
    Status status = record().read(entries);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    return status;
  }

  // The record as (dev, mount point) pairs by device, for comparing (the directory has no order).
  std::vector<std::pair<std::string, std::string>> sorted(const std::vector<IntentRecord::Entry>& entries) const {
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& e : entries) pairs.emplace_back(e.dev, e.mount_point);
    std::sort(pairs.begin(), pairs.end());
    return pairs;
  }
};

TEST_F(Intent, MissingRecordIsNoRecord) {
  std::vector<IntentRecord::Entry> entries{{"7:0", "/left/over"}};
  Status status = read_promptly(&entries);
  EXPECT_TRUE(status) << status.message();
  EXPECT_TRUE(entries.empty());
}

TEST_F(Intent, AddedEntriesReadBackUntilRemoved) {
  ASSERT_TRUE(record().add({"7:0", "/srv/image"}));
  ASSERT_TRUE(record().add({"0:40", "/srv/data"}));
  ASSERT_TRUE(record().add({"8:17", "/mnt/xfs backup"}));
  std::vector<IntentRecord::Entry> entries;
  ASSERT_TRUE(read_promptly(&entries));
  EXPECT_EQ(sorted(entries), (std::vector<std::pair<std::string, std::string>>{
                                 {"0:40", "/srv/data"}, {"7:0", "/srv/image"}, {"8:17", "/mnt/xfs backup"}}));
  record().remove("7:0");
  ASSERT_TRUE(record().add({"0:40", "/var/lib/postgresql"}));  // a second add replaces the entry
  ASSERT_TRUE(read_promptly(&entries));
  EXPECT_EQ(sorted(entries), (std::vector<std::pair<std::string, std::string>>{{"0:40", "/var/lib/postgresql"},
                                                                               {"8:17", "/mnt/xfs backup"}}));
}

TEST_F(Intent, EntryOverTheSizeLimitIsAnErrorNamingItAndTheLimit) {
  fs::create_directories(record().dir());
  std::ofstream(entry("7:0")) << std::string(IntentRecord::kMaxEntryBytes + 1, 'a');
  std::vector<IntentRecord::Entry> entries;
  Status status = read_promptly(&entries);
  EXPECT_EQ(status.message(), fmt::format("{} is larger than {} bytes: not a record this agent wrote",
                                          entry("7:0").string(), IntentRecord::kMaxEntryBytes));
}

TEST_F(Intent, MoreEntriesThanTheLimitIsAnErrorNamingTheDirectoryAndTheLimit) {
  // Twice the limit (finding 13 had a 200,000-line record): the read stops at the limit.
  fs::create_directories(record().dir());
  for (size_t i = 0; i < 2 * IntentRecord::kMaxEntries; ++i) std::ofstream(entry("7:" + std::to_string(i))) << "/m\n";
  std::vector<IntentRecord::Entry> entries;
  Status status = read_promptly(&entries);
  EXPECT_EQ(status.message(), fmt::format("{} holds more than {} entries: not a record this agent wrote",
                                          record().dir().string(), IntentRecord::kMaxEntries));
}

TEST_F(Intent, FifoAsAnEntryIsAnErrorAndDoesNotHang) {
  fs::create_directories(record().dir());
  ASSERT_EQ(mkfifo(entry("7:0").c_str(), 0600), 0) << std::strerror(errno);
  std::vector<IntentRecord::Entry> entries;
  Status status = read_promptly(&entries);
  EXPECT_EQ(status.message(), entry("7:0").string() + " is not a regular file");
}

TEST_F(Intent, FifoInPlaceOfTheRecordIsAnErrorAndDoesNotHang) {
  ASSERT_EQ(mkfifo(record().dir().c_str(), 0600), 0) << std::strerror(errno);
  std::vector<IntentRecord::Entry> entries;
  Status status = read_promptly(&entries);
  EXPECT_EQ(status.error_number(), ENOTDIR) << status.message();
  EXPECT_NE(status.message().find(record().dir().string()), std::string::npos) << status.message();
}

TEST_F(Intent, SymlinkAsAnEntryIsAnError) {
  std::ofstream(dir_ / "elsewhere") << "/\n";
  fs::create_directories(record().dir());
  fs::create_symlink(dir_ / "elsewhere", entry("254:1"));
  std::vector<IntentRecord::Entry> entries;
  Status status = read_promptly(&entries);
  EXPECT_EQ(status.error_number(), ELOOP) << status.message();
  EXPECT_NE(status.message().find(entry("254:1").string()), std::string::npos) << status.message();
}

TEST_F(Intent, AFifoPlantedInPlaceOfAnEntryFailsTheAddInsteadOfHangingIt) {
  fs::create_directories(record().dir());
  ASSERT_EQ(mkfifo((record().dir() / "7:1").c_str(), 0600), 0) << std::strerror(errno);
  Status status = record().add({"7:1", "/srv/image"});
  EXPECT_FALSE(status);
  EXPECT_NE(status.message().find("7:1"), std::string::npos) << status.message();
}

TEST_F(RuntimeDirLock, SecondAcquireFailsNamingTheHoldersPid) {
  RuntimeLock first, second;
  ASSERT_TRUE(first.acquire(dir_));
  Status status = second.acquire(dir_);
  EXPECT_EQ(status.message(), "another hv-vss-agent (pid " + std::to_string(getpid()) +
                                  ") is running with runtime directory " + dir_.string());
}

TEST_F(RuntimeDirLock, IsFreeAgainOnceItsHolderIsGone) {
  {
    RuntimeLock first;
    ASSERT_TRUE(first.acquire(dir_));
  }
  RuntimeLock second;
  Status status = second.acquire(dir_);
  EXPECT_TRUE(status) << status.message();
}

}  // namespace
}  // namespace hvvss
