// The configuration schema with the daemon's real settings (the agent's [Agent] and the fsfreeze
// plugin's [Filesystems]): durations, files and drop-ins, files that must not be read (directories,
// devices, FIFOs, huge files), and the command line over the files.
#include "agent/config.h"
#include "agent/agent_settings.h"
#include "plugins/fsfreeze/settings.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace hvvss {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A scratch directory for configuration files, and the daemon's schema bound to `agent` and `filters`.
class Config : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/hv-vss-config-XXXXXX";
    dir_ = mkdtemp(templ);
    agent_.declare(schema_);
    fsfreeze::declare_settings(schema_, &filters_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  std::string fifo(const std::string& name) {
    fs::create_directories((dir_ / name).parent_path());
    EXPECT_EQ(mkfifo((dir_ / name).c_str(), 0600), 0) << std::strerror(errno);
    return (dir_ / name).string();
  }
  // The message of loading `path` (required), "" for success; EXPECTs it to take under a second.
  std::string load_promptly(const std::string& path) {
    auto start = std::chrono::steady_clock::now();
    Status status = schema_.load(path, true);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << path;
    return status.message();
  }
  // Runs configure() on `args` (after the program name); `err` receives what it printed to stderr.
  std::optional<int> configure_with(std::vector<std::string> args, std::string* err = nullptr) {
    args.insert(args.begin(), "hv-vss-agent");
    std::vector<char*> argv;
    argv.reserve(args.size());
    for (auto& arg : args) argv.push_back(arg.data());
    CommandLineInfo info{.program = "hv-vss-agent",
                         .description = "test",
                         .version = "hv-vss-agent test",
                         .default_config_path = (dir_ / "absent.conf").string(),
                         .footer = ""};
    ::testing::internal::CaptureStderr();
    auto code = configure(schema_, static_cast<int>(argv.size()), argv.data(), info);
    std::string printed = ::testing::internal::GetCapturedStderr();
    if (err) *err = printed;
    return code;
  }

  fs::path dir_;
  AgentSettings agent_;
  fsfreeze::Filters filters_;
  ConfigSchema schema_;
};

TEST(Duration, AcceptsSecondsMillisecondsAndMinutes) {
  std::chrono::milliseconds d{};
  ASSERT_TRUE(parse_duration("15", &d));
  EXPECT_EQ(d, 15000ms);
  ASSERT_TRUE(parse_duration("1.5s", &d));
  EXPECT_EQ(d, 1500ms);
  ASSERT_TRUE(parse_duration("250ms", &d));
  EXPECT_EQ(d, 250ms);
  ASSERT_TRUE(parse_duration("2min", &d));
  EXPECT_EQ(d, 120000ms);
  ASSERT_TRUE(parse_duration("1.0006s", &d));  // to the nearest millisecond
  EXPECT_EQ(d, 1001ms);
  ASSERT_TRUE(parse_duration("0.5ms", &d));
  EXPECT_EQ(d, 1ms);
  ASSERT_TRUE(parse_duration(".25s", &d));
  EXPECT_EQ(d, 250ms);
}

TEST(Duration, RejectsZeroNegativeAndGarbageLeavingTheTargetAlone) {
  std::chrono::milliseconds d = 7ms;
  for (const char* bad : {"0", "-1", "+1", " 1", "1e3", "1..5s", ".", "inf", "abc", "5h", "", "s", "0.0001ms"}) {
    Status status = parse_duration(bad, &d);
    EXPECT_EQ(status.message(), fmt::format("invalid duration '{}' (use e.g. 15, 15s, 500ms, 2min)", bad));
  }
  EXPECT_EQ(d, 7ms);
}

TEST_F(Config, ReadsEveryKeyOfTheAgentAndThePlugin) {
  auto path = write("agent.conf",
                    "[Agent]\nDevice=/tmp/sock\nReplyBudgetSec=10\nAutoThawSec=30s\nLogLevel=debug\n"
                    "RuntimeDirectory=/tmp/rt\n[Filesystems]\nOnlyMounts=/a /b\nExcludeMounts=/mnt/*\n"
                    "FreezableTypes=xfs\n");
  ASSERT_EQ(schema_.load(path, true).message(), "");
  EXPECT_EQ(agent_.device, "/tmp/sock");
  EXPECT_EQ(agent_.reply_budget, 10s);
  EXPECT_EQ(agent_.auto_thaw, 30s);
  EXPECT_EQ(agent_.log_level, spdlog::level::debug);
  EXPECT_EQ(agent_.runtime_dir, "/tmp/rt");
  EXPECT_EQ(filters_.only_mounts, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(filters_.exclude_globs, (std::vector<std::string>{"/mnt/*"}));
  EXPECT_EQ(filters_.freezable_types, (std::vector<std::string>{"xfs"}));
}

TEST_F(Config, UnknownKeyNamesFileLineKeyAndSection) {
  auto path = write("agent.conf", "[Agent]\nDevice=/x\n\nReplyBudget=10\n");
  EXPECT_EQ(schema_.load(path, true).message(), path + ":4: unknown key 'ReplyBudget' in section [Agent]");
}

TEST_F(Config, SyntaxErrorIsReportedAtItsLineNotAtALaterBadKey) {
  auto path = write("agent.conf", "[Agent]\nno equals sign\nBogus=1\n");
  EXPECT_EQ(schema_.load(path, true).message(), path + ":2: syntax error");
}

TEST_F(Config, BadKeyIsReportedAtItsLineNotAtALaterSyntaxError) {
  auto path = write("agent.conf", "[Agent]\nBogus=1\nno equals sign\n");
  EXPECT_EQ(schema_.load(path, true).message(), path + ":2: unknown key 'Bogus' in section [Agent]");
}

TEST_F(Config, BadValueNamesFileLineAndKey) {
  auto path = write("agent.conf", "[Agent]\nAutoThawSec=soon\n");
  EXPECT_EQ(schema_.load(path, true).message(),
            path + ":2: AutoThawSec=: invalid duration 'soon' (use e.g. 15, 15s, 500ms, 2min)");
}

TEST_F(Config, RelativeOnlyMountsIsAnError) {
  auto path = write("agent.conf", "[Filesystems]\nOnlyMounts=srv\n");
  EXPECT_EQ(schema_.load(path, true).message(), path + ":2: OnlyMounts=: 'srv' is not an absolute path");
}

TEST_F(Config, LineTooLongForInihIsAnErrorNotTwoLines) {
  auto path =
      write("agent.conf", "[Filesystems]\nOnlyMounts=" + std::string(150, 'a') + " /" + std::string(50, 'b') + "=c\n");
  EXPECT_EQ(schema_.load(path, true).message(), path + ":2: line longer than 198 characters");
}

TEST_F(Config, NulByteIsAnError) {
  std::string text = "[Agent]\nDevice=/x";
  text += '\0';
  text += "y\n";
  auto path = write("agent.conf", text);
  EXPECT_EQ(schema_.load(path, true).message(), path + ": contains a NUL byte");
}

TEST_F(Config, TextLoadsLikeAFileAndErrorsNameIt) {
  ASSERT_EQ(schema_.load_text("[Agent]\nAutoThawSec=30s\n", "inline").message(), "");
  EXPECT_EQ(agent_.auto_thaw, 30s);
  EXPECT_EQ(schema_.load_text("[Agent]\n\nBogus=1\n", "inline").message(),
            "inline:3: unknown key 'Bogus' in section [Agent]");
  EXPECT_EQ(schema_.load_text(std::string_view("[Agent]\0", 8), "inline").message(), "inline: contains a NUL byte");
}

TEST_F(Config, DropInsApplyInLexicalOrderAfterTheMainFile) {
  auto path = write("agent.conf", "[Agent]\nReplyBudgetSec=10\nAutoThawSec=20\n");
  write("agent.conf.d/20-late.conf", "[Agent]\nReplyBudgetSec=12\n");
  write("agent.conf.d/10-early.conf", "[Agent]\nReplyBudgetSec=11\nAutoThawSec=21\n");
  write("agent.conf.d/ignored.txt", "[Agent]\nBogus=1\n");
  ASSERT_EQ(schema_.load(path, true).message(), "");
  EXPECT_EQ(agent_.reply_budget, 12s);
  EXPECT_EQ(agent_.auto_thaw, 21s);
}

TEST_F(Config, ErrorInDropInNamesTheDropIn) {
  auto path = write("agent.conf", "");
  auto dropin = write("agent.conf.d/50-bad.conf", "[Nope]\nKey=1\n");
  EXPECT_EQ(schema_.load(path, true).message(), dropin + ":2: unknown key 'Key' in section [Nope]");
}

TEST_F(Config, MissingFileIsFineUnlessRequired) {
  auto path = (dir_ / "none.conf").string();
  EXPECT_TRUE(schema_.load(path, false));
  Status status = schema_.load(path, true);
  EXPECT_EQ(status.message(), path + ": No such file or directory");
  EXPECT_EQ(status.error_number(), ENOENT);
}

TEST_F(Config, ListAssignmentsAddUp) {
  auto path = write("agent.conf", "[Filesystems]\nExcludeMounts=/a\nExcludeMounts=/b /c\n");
  ASSERT_EQ(schema_.load(path, true).message(), "");
  EXPECT_EQ(filters_.exclude_globs, (std::vector<std::string>{"/a", "/b", "/c"}));
}

TEST_F(Config, EmptyListAssignmentResetsTheList) {
  auto path = write("agent.conf", "[Filesystems]\nExcludeMounts=/a\nExcludeMounts=\nExcludeMounts=/b\n");
  ASSERT_EQ(schema_.load(path, true).message(), "");
  EXPECT_EQ(filters_.exclude_globs, (std::vector<std::string>{"/b"}));
}

TEST_F(Config, FreezableTypesAssignmentReplacesTheDefaultTypes) {
  auto path = write("agent.conf", "[Filesystems]\nFreezableTypes=xfs\nFreezableTypes=ext4 btrfs\n");
  ASSERT_EQ(schema_.load(path, true).message(), "");
  EXPECT_EQ(filters_.freezable_types, (std::vector<std::string>{"ext4", "btrfs"}));
}

TEST_F(Config, DirectoryAsConfigFileIsAnErrorNamingIt) {
  EXPECT_EQ(load_promptly(dir_.string()), dir_.string() + ": not a regular file");
}

TEST_F(Config, CharacterDeviceAsConfigFileIsAnErrorNamingItAndReturnsPromptly) {
  EXPECT_EQ(load_promptly("/dev/zero"), "/dev/zero: not a regular file");
}

TEST_F(Config, FifoAsConfigFileIsAnErrorAndDoesNotHang) {
  auto path = fifo("agent.conf");
  EXPECT_EQ(load_promptly(path), path + ": not a regular file");
}

TEST_F(Config, DevNullIsAnEmptyConfiguration) {
  EXPECT_EQ(load_promptly("/dev/null"), "");
  EXPECT_EQ(agent_.reply_budget, 15s);
}

TEST_F(Config, FileOverOneMiBIsAnErrorNamingIt) {
  auto path = write("agent.conf", std::string(kMaxConfigFileBytes + 1, '\n'));
  EXPECT_EQ(load_promptly(path), path + ": larger than 1 MiB");
}

TEST_F(Config, FileOfExactlyOneMiBIsRead) {
  std::string text = "[Agent]\nAutoThawSec=90\n";
  text.resize(kMaxConfigFileBytes, '\n');
  EXPECT_EQ(load_promptly(write("agent.conf", text)), "");
  EXPECT_EQ(agent_.auto_thaw, 90s);
}

TEST_F(Config, DropInThatIsNotARegularFileIsAnError) {
  auto path = write("agent.conf", "");
  auto pipe = fifo("agent.conf.d/10-pipe.conf");
  EXPECT_EQ(load_promptly(path), pipe + ": not a regular file");
  fs::remove(pipe);
  fs::create_directories(dir_ / "agent.conf.d/20-dir.conf");
  EXPECT_EQ(load_promptly(path), (dir_ / "agent.conf.d/20-dir.conf").string() + ": not a regular file");
}

TEST_F(Config, DropInDirectoryThatIsAFileIsAnError) {
  auto path = write("agent.conf", "");
  auto dropins = write("agent.conf.d", "");
  EXPECT_EQ(schema_.load(path, true).message(), dropins + ": Not a directory");
}

TEST_F(Config, CommandLineListReplacesTheFileList) {
  auto path = write("agent.conf", "[Filesystems]\nOnlyMounts=/a /b\nExcludeMounts=/x\n");
  EXPECT_EQ(configure_with({"--config", path, "--only-mounts", "/c", "/d"}), std::nullopt);
  EXPECT_EQ(filters_.only_mounts, (std::vector<std::string>{"/c", "/d"}));
  EXPECT_EQ(filters_.exclude_globs, (std::vector<std::string>{"/x"}));
}

TEST_F(Config, CommandLineOverridesTheFileValue) {
  auto path = write("agent.conf", "[Agent]\nReplyBudgetSec=10\nAutoThawSec=20\n");
  EXPECT_EQ(configure_with({"--config", path, "--reply-budget", "1500ms"}), std::nullopt);
  EXPECT_EQ(agent_.reply_budget, 1500ms);
  EXPECT_EQ(agent_.auto_thaw, 20s);
}

// The kernel waits 30 s for the reply to HOT_BACKUP and THAW; an auto-thaw under 10 s would thaw
// an ordinary snapshot under the host.
TEST_F(Config, ReplyBudgetOutsideOneToThirtySecondsAndAutoThawUnderTenAreErrors) {
  EXPECT_EQ(load_promptly(write("a.conf", "[Agent]\nReplyBudgetSec=31\n")),
            (dir_ / "a.conf").string() +
                ":2: ReplyBudgetSec=: '31' is outside what the kernel waits for a reply (1s to 30s)");
  EXPECT_EQ(configure_with({"--config", "/dev/null", "--reply-budget", "900ms"}), 2);
  EXPECT_EQ(configure_with({"--config", "/dev/null", "--auto-thaw", "9s"}), 2);
  EXPECT_EQ(configure_with({"--config", "/dev/null", "--reply-budget", "30s", "--auto-thaw", "10s"}), std::nullopt);
}

TEST_F(Config, BadOptionValueExitsTwoNamingTheOption) {
  std::string err;
  EXPECT_EQ(configure_with({"--config", "/dev/null", "--reply-budget", "soon"}, &err), 2);
  EXPECT_EQ(err, "hv-vss-agent: --reply-budget: invalid duration 'soon' (use e.g. 15, 15s, 500ms, 2min)\n");
}

TEST_F(Config, ConfigThatIsADirectoryExitsTwoNamingIt) {
  std::string err;
  EXPECT_EQ(configure_with({"--config", dir_.string()}, &err), 2);
  EXPECT_EQ(err, "hv-vss-agent: configuration error: " + dir_.string() + ": not a regular file\n");
}

TEST_F(Config, MissingDefaultConfigIsFineButMissingNamedConfigExitsTwo) {
  EXPECT_EQ(configure_with({}), std::nullopt);
  std::string err;
  EXPECT_EQ(configure_with({"--config", (dir_ / "absent.conf").string()}, &err), 2);
  EXPECT_NE(err.find("absent.conf: No such file or directory"), std::string::npos) << err;
}

TEST_F(Config, OptionValueMayFollowAnEqualsSign) {
  EXPECT_EQ(configure_with({"--config=/dev/null", "--reply-budget=1500ms", "--only-mounts=/c", "/d"}), std::nullopt);
  EXPECT_EQ(agent_.reply_budget, 1500ms);
  EXPECT_EQ(filters_.only_mounts, (std::vector<std::string>{"/c", "/d"}));
}

TEST_F(Config, ListOptionGivenTwiceKeepsEveryValue) {
  EXPECT_EQ(
      configure_with({"--config", "/dev/null", "--only-mounts", "/a", "--reply-budget", "2s", "--only-mounts", "/b"}),
      std::nullopt);
  EXPECT_EQ(filters_.only_mounts, (std::vector<std::string>{"/a", "/b"}));
}

TEST_F(Config, UsageErrorsExitTwoNamingTheArgument) {
  for (auto [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--no-such-option", "x"}, "unknown option --no-such-option"},
           {{"--device"}, "--device needs a value"},
           {{"--device", "/a", "--device", "/b"}, "--device given twice"},
           {{"stray"}, "unexpected argument 'stray'"},
           {{"--device", "/a", "stray"}, "unexpected argument 'stray'"}}) {
    std::string err;
    EXPECT_EQ(configure_with(args, &err), 2) << message;
    EXPECT_EQ(err, "hv-vss-agent: " + message + "\nRun with --help for more information.\n");
  }
}

TEST_F(Config, VersionPrintsTheVersionAndExitsZero) {
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(configure_with({"--version"}), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "hv-vss-agent test\n");
}

TEST_F(Config, HelpListsEveryOptionWithItsKeyAndExitsZero) {
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(configure_with({"--help"}), 0);
  std::string help = ::testing::internal::GetCapturedStdout();
  for (const char* option : {"--config", "--version", "--device PATH", "--runtime-dir PATH", "--reply-budget DURATION",
                             "--auto-thaw DURATION", "--log-level LEVEL", "--only-mounts PATH ...",
                             "--exclude-mounts GLOB ...", "--freezable-types TYPE ..."})
    EXPECT_NE(help.find(option), std::string::npos) << option;
  EXPECT_NE(help.find("(config: [Filesystems] ExcludeMounts=)"), std::string::npos) << help;
}

TEST_F(Config, EveryKeyHasACommandLineTwinAndHelp) {
  EXPECT_EQ(schema_.settings().size(), 8u);
  for (const auto& s : schema_.settings()) {
    EXPECT_TRUE(s.flag.starts_with("--")) << s.key;
    EXPECT_FALSE(s.help.empty()) << s.key;
  }
}

TEST_F(Config, DeclaringAKeyOrAFlagTwiceIsAProgrammingError) {
  std::string spare;
  EXPECT_THROW(schema_.add(path_setting("Agent", "Device", "--other", "help", &spare)), std::logic_error);
  EXPECT_THROW(schema_.add(path_setting("Other", "Key", "--device", "help", &spare)), std::logic_error);
}

}  // namespace
}  // namespace hvvss
