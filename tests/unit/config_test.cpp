#include "agent/config.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>

namespace hvvss {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/hv-vss-config-XXXXXX";
    dir_ = mkdtemp(templ);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST(Duration, AcceptsSecondsMillisecondsAndMinutes) {
  std::chrono::milliseconds d{};
  ASSERT_TRUE(parse_duration("15", d));
  EXPECT_EQ(d, 15000ms);
  ASSERT_TRUE(parse_duration("1.5s", d));
  EXPECT_EQ(d, 1500ms);
  ASSERT_TRUE(parse_duration("250ms", d));
  EXPECT_EQ(d, 250ms);
  ASSERT_TRUE(parse_duration("2min", d));
  EXPECT_EQ(d, 120000ms);
}

TEST(Duration, RejectsZeroNegativeAndGarbage) {
  std::chrono::milliseconds d{};
  for (const char* bad : {"0", "-1", "abc", "5h", "", "s", "0.0001ms"}) EXPECT_FALSE(parse_duration(bad, d)) << bad;
}

TEST_F(ConfigFiles, ReadsEveryKey) {
  auto path = write("agent.conf",
                    "[Agent]\nDevice=/tmp/sock\nReplyBudgetSec=10\nAutoThawSec=30s\nLogLevel=debug\n"
                    "RuntimeDirectory=/tmp/rt\n[Filesystems]\nOnlyMounts=/a /b\nExcludeMounts=/mnt/*\n"
                    "FreezableTypes=xfs\n");
  AgentConfig c;
  ASSERT_EQ(load_config(path, true, c), "");
  EXPECT_EQ(c.device, "/tmp/sock");
  EXPECT_EQ(c.reply_budget, 10s);
  EXPECT_EQ(c.auto_thaw, 30s);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.runtime_dir, "/tmp/rt");
  EXPECT_EQ(c.filters.only_mounts, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c.filters.exclude_globs, (std::vector<std::string>{"/mnt/*"}));
  EXPECT_EQ(c.filters.freezable_types, (std::vector<std::string>{"xfs"}));
}

TEST_F(ConfigFiles, UnknownKeyNamesFileAndLine) {
  auto path = write("agent.conf", "[Agent]\nDevice=/x\n\nReplyBudget=10\n");
  AgentConfig c;
  EXPECT_EQ(load_config(path, true, c), path + ":4: unknown key 'ReplyBudget' in section [Agent]");
}

TEST_F(ConfigFiles, BadValueNamesFileLineAndKey) {
  auto path = write("agent.conf", "[Agent]\nAutoThawSec=soon\n");
  AgentConfig c;
  auto error = load_config(path, true, c);
  EXPECT_NE(error.find(path + ":2: AutoThawSec=: invalid duration 'soon'"), std::string::npos) << error;
}

TEST_F(ConfigFiles, RelativeOnlyMountsIsAnError) {
  auto path = write("agent.conf", "[Filesystems]\nOnlyMounts=srv\n");
  AgentConfig c;
  EXPECT_NE(load_config(path, true, c).find("'srv' is not an absolute path"), std::string::npos);
}

TEST_F(ConfigFiles, DropInsApplyInLexicalOrderAfterTheMainFile) {
  auto path = write("agent.conf", "[Agent]\nReplyBudgetSec=10\nAutoThawSec=20\n");
  write("agent.conf.d/20-late.conf", "[Agent]\nReplyBudgetSec=12\n");
  write("agent.conf.d/10-early.conf", "[Agent]\nReplyBudgetSec=11\nAutoThawSec=21\n");
  write("agent.conf.d/ignored.txt", "[Agent]\nBogus=1\n");
  AgentConfig c;
  ASSERT_EQ(load_config(path, true, c), "");
  EXPECT_EQ(c.reply_budget, 12s);
  EXPECT_EQ(c.auto_thaw, 21s);
}

TEST_F(ConfigFiles, ErrorInDropInNamesTheDropIn) {
  auto path = write("agent.conf", "");
  auto dropin = write("agent.conf.d/50-bad.conf", "[Nope]\nKey=1\n");
  AgentConfig c;
  EXPECT_EQ(load_config(path, true, c), dropin + ":2: unknown key 'Key' in section [Nope]");
}

TEST_F(ConfigFiles, MissingFileIsFineUnlessRequired) {
  AgentConfig c;
  EXPECT_EQ(load_config((dir_ / "none.conf").string(), false, c), "");
  EXPECT_NE(load_config((dir_ / "none.conf").string(), true, c), "");
}

TEST_F(ConfigFiles, EmptyListAssignmentResetsTheList) {
  auto path = write("agent.conf", "[Filesystems]\nExcludeMounts=/a\nExcludeMounts=\nExcludeMounts=/b\n");
  AgentConfig c;
  ASSERT_EQ(load_config(path, true, c), "");
  EXPECT_EQ(c.filters.exclude_globs, (std::vector<std::string>{"/b"}));
}

TEST(Settings, EveryKeyHasACommandLineTwin) {
  for (const auto& s : settings()) {
    EXPECT_TRUE(s.flag.starts_with("--")) << s.key;
    EXPECT_FALSE(s.help.empty()) << s.key;
  }
}

}  // namespace
}  // namespace hvvss
