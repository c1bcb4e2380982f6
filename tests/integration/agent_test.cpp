// The real hv-vss-agent binary against the real hv-vss-sim, freezing real loop-mounted ext4,
// xfs and btrfs filesystems that each test creates and always removes. The agent always runs
// with an allow-list of exactly those mounts.
#include "agent/protocol.h"
#include "plugins/fsfreeze/targets.h"
#include "tests/integration/agent_fixture.h"
#include "tests/integration/harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>

namespace hvvss::test {
namespace {

namespace fs = std::filesystem;

// A datagram socket bound at `path`, standing in for systemd's notify socket.
UniqueFd bind_datagram(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  return fd;
}

// The next datagram ("" after kPatience).
std::string next_datagram(int fd) {
  pollfd pfd{fd, POLLIN, 0};
  char buf[512] = {};
  if (poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kPatience).count())) != 1 ||
      recv(fd, buf, sizeof buf - 1, 0) <= 0)
    return {};
  return buf;
}

// Sends `message` to the datagram socket at `path` until its queue is full; returns how many fit.
int fill_datagram_socket(const std::string& path, const std::string& message) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  int sent = 0;
  while (sendto(fd.get(), message.data(), message.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr),
                sizeof addr) == static_cast<ssize_t>(message.size()))
    ++sent;
  return errno == EAGAIN ? sent : -1;
}

// Sends requests that the agent refuses at once (an unknown operation) and never reads a reply,
// until the agent lets go of the channel; false if it does not within kPatience.
bool flood_until_hangup(int channel) {
  Frame request = encode_request(42);
  auto until = Clock::now() + kPatience;
  while (Clock::now() < until) {
    pollfd pfd{channel, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (poll(&pfd, 1, static_cast<int>(std::max<long long>(left, 0))) != 1) return false;
    if (pfd.revents & POLLHUP) return true;
    if (send(channel, request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
      return errno == EPIPE || errno == ECONNRESET;
  }
  return false;
}

TEST_F(AgentTest, BackupBlocksWritesOnEveryFilesystemUntilThaw) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"backup", "--hold-stdin"});
  start_agent();
  ASSERT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  EXPECT_TRUE(intent_recorded());
  auto probes = probes_blocked_on_every_mount();
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_FALSE(intent_recorded());
}

TEST_F(AgentTest, ManyIndependentFilesystemsFreezeTogetherAndAllThaw) {
  use({"ext4", "xfs", "btrfs", "ext4", "xfs", "btrfs"});  // one wave, frozen in parallel
  Process& sim = start_sim({"backup", "--hold-stdin"});
  start_agent();
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  auto probes = probes_blocked_on_every_mount();
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, RepeatedBackupsAllSucceed) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"repeat", "5", "--hold", "0"});
  start_agent();
  int ok_replies = 0;
  while (auto line = sim.read_line())
    if (json_field(*line, "event") == "reply" && json_field(*line, "ok") == "true") ++ok_replies;
  EXPECT_EQ(ok_replies, 15);
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable(mounts()));
}

TEST_F(AgentTest, FailedFreezeRollsBackTheOthersAndAnswersFail) {
  // tmpfs is mounted first, so it is frozen last: after ext4, xfs and btrfs are already frozen.
  use({"tmpfs", "ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"backup", "--hold", "0", "--expect", "FREEZE=HV_E_FAIL"});
  Process& agent = start_agent();
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_E_FAIL");
  EXPECT_TRUE(all_writable({mounts()[1], mounts()[2], mounts()[3]}));
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_FALSE(intent_recorded());
  EXPECT_NE(stop_and_read_log(agent).find("FIFREEZE " + mounts()[0] + ": Operation not supported; rolled back"),
            std::string::npos);
}

// A FIFREEZE stuck on one filesystem never holds the others: at the deadline the host is told
// HV_E_FAIL and what is already frozen is thawed at once; the stuck one is thawed when its call
// returns.
TEST_F(AgentTest, AFreezeStuckOnOneFilesystemIsAnsweredFailAndTheOthersAreThawedAtOnce) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"backup", "--hold", "0", "--expect", "FREEZE=HV_E_FAIL"});
  StuckWriter stuck(mounts()[0]);  // the FIFREEZE of the ext4 will wait for this write
  Process& agent = start_agent({.extra = {"--reply-budget", "1s"}});
  // Answered at the deadline while the ext4's FIFREEZE is still waiting...
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_E_FAIL");
  // ...and the xfs, frozen before it, is writable again while it still waits.
  EXPECT_TRUE(write_completes(mounts()[1]));
  stuck.release();
  // Once it returns, the ext4 is thawed too; the THAW is served after that.
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable(mounts()));
  EXPECT_FALSE(intent_recorded());
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("fsfreeze freeze: timeout"), std::string::npos) << log;
  EXPECT_NE(log.find("already frozen ones thawed 1 filesystem(s): " + mounts()[1]), std::string::npos) << log;
  EXPECT_NE(log.find(mounts()[0] + " thawed when its FIFREEZE returned"), std::string::npos) << log;
}

// Someone else's freeze may be lifted at any moment, so the snapshot's consistency would not be
// the agent's to promise: FREEZE fails, ours are rolled back, and theirs is left exactly as it was.
TEST_F(AgentTest, AFilesystemFrozenBySomeoneElseFailsTheFreezeAndIsLeftFrozen) {
  use({"ext4", "xfs", "btrfs"});
  UniqueFd foreign(open(mounts()[1].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_EQ(ioctl(foreign.get(), FIFREEZE, 0), 0);  // another tool's freeze (fsfreeze -f)
  Process& sim = start_sim({"backup", "--hold", "0", "--expect", "FREEZE=HV_E_FAIL"});
  Process& agent = start_agent();
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_E_FAIL");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable({mounts()[0], mounts()[2]}));
  EXPECT_FALSE(intent_recorded());  // nothing of theirs, even after a crash
  {
    ProbeWriter probe(mounts()[1]);
    EXPECT_TRUE(probe.blocks()) << "the agent thawed a freeze it did not make";
    EXPECT_EQ(ioctl(foreign.get(), FITHAW, 0), 0);
    EXPECT_TRUE(probe.completes());
  }
  EXPECT_NE(stop_and_read_log(agent).find("already frozen by someone else, left alone: " + mounts()[1]),
            std::string::npos);
}

TEST_F(AgentTest, AFreezeOutstandingWhenTheChannelIsLostIsNeverAnsweredOnTheNewChannel) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"disconnect-mid-freeze", "--hold-stdin"});
  StuckWriter stuck(mounts()[0]);  // the agent's FIFREEZE of the ext4 waits for this write
  Process& agent = start_agent();
  ASSERT_TRUE(sim.read_until({"\"request\"", "\"FREEZE\""}));
  ASSERT_TRUE(stuck_in_freeze(agent.pid()));
  sim.write_stdin("rescind");  // the channel goes while the FREEZE is outstanding
  ASSERT_TRUE(sim.read_until({"\"registered\""}));
  stuck.release();  // the freeze completes for a channel that no longer exists
  sim.write_stdin("backup");
  // The new channel's requests wait for the old freeze's rollback, and get their own replies.
  EXPECT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);  // the simulator fails on any reply that no request waits for
  EXPECT_TRUE(all_writable(mounts()));
}

// The auto-thaw's shortest delay, 10 s, is what this test takes.
TEST_F(AgentTest, FreezeWithoutThawIsUndoneByAutoThawAndTheLateThawIsToldTheSnapshotMayBeTorn) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"backup", "--hold-stdin", "--expect", "THAW=HV_E_FAIL"});
  Process& agent = start_agent({.extra = {"--auto-thaw", "10s"}});
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  auto probes = probes_blocked_on_every_mount();
  for (auto& p : probes) EXPECT_TRUE(p->completes());  // no THAW was sent yet
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_E_FAIL");
  EXPECT_EQ(sim.wait(), 0);
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("thawing automatically"), std::string::npos);
  EXPECT_NE(log.find("the snapshot may not be consistent"), std::string::npos);
}

TEST_F(AgentTest, RestartedAgentThawsWhatAKilledOneLeftFrozen) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"freeze-no-thaw", "--hold-stdin"});
  Process& first = start_agent({.extra = {"--auto-thaw", "10min"}});
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  first.kill(SIGKILL);
  first.wait();
  auto probes = probes_blocked_on_every_mount();  // still frozen after SIGKILL
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(intent_recorded());
  Process& second = start_agent();
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  EXPECT_TRUE(sim.read_until({"\"registered\""}));
  EXPECT_FALSE(intent_recorded());
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_NE(
      stop_and_read_log(second).find("fsfreeze: a previous agent left it frozen; recovered: thawed 3 filesystem(s)"),
      std::string::npos);
}

// A filesystem stays the agent's until a FITHAW succeeds: the failed one is retried, named by the
// intent record meanwhile, and nothing new is frozen until it is thawed.
TEST_F(AgentTest, AFailedThawIsRetriedUntilTheFilesystemIsThawed) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"backup", "--hold-stdin", "--expect", "THAW=HV_E_FAIL"});
  Process& agent = start_agent({.faults = "thaw:" + mounts()[1] + "=fail:EIO:1"});
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_E_FAIL");  // honest: the xfs is still frozen
  EXPECT_TRUE(write_completes(mounts()[0]));
  EXPECT_TRUE(write_completes(mounts()[1]));  // thawed by the retry
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_FALSE(intent_recorded());
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("FITHAW " + mounts()[1] + ": Input/output error (still frozen; retried later)"), std::string::npos)
      << log;
  EXPECT_NE(log.find("the thaw that had failed succeeded"), std::string::npos) << log;
}

// While a thaw keeps failing the filesystem stays the agent's: the next backup is refused (not
// mistaken for someone else's freeze), the intent record keeps naming it, and after a crash the
// next agent thaws it.
TEST_F(AgentTest, WhatAFailedThawLeftFrozenStaysOursUntilTheNextAgentThawsIt) {
  use({"ext4", "xfs"});
  Process& first_host = start_sim({"backup", "--hold-stdin", "--expect", "THAW=HV_E_FAIL"});
  Process& first = start_agent({.faults = "thaw:" + mounts()[1] + "=fail:EIO"});
  ASSERT_EQ(reply_to(first_host, "FREEZE"), "HV_S_OK");
  first_host.write_stdin("thaw");
  EXPECT_EQ(reply_to(first_host, "THAW"), "HV_E_FAIL");
  EXPECT_EQ(first_host.wait(), 0);
  EXPECT_TRUE(write_completes(mounts()[0]));
  Process& second_host = start_sim({"backup", "--hold", "0", "--expect", "HOT_BACKUP=HV_E_FAIL", "--expect",
                                    "FREEZE=HV_E_FAIL", "--expect", "THAW=HV_E_FAIL"});
  EXPECT_EQ(second_host.wait(), 0);
  first.kill(SIGKILL);
  first.wait();
  ProbeWriter probe(mounts()[1]);
  ASSERT_TRUE(probe.blocks());  // still frozen, and still named
  ASSERT_TRUE(intent_recorded());
  Process& host = start_sim({"idle", "--hold", "0"});
  Process& second = start_agent();
  EXPECT_TRUE(probe.completes());
  EXPECT_FALSE(intent_recorded());
  EXPECT_EQ(host.wait(), 0);
  EXPECT_NE(stop_and_read_log(second).find("recovered: thawed 1 filesystem(s): " + mounts()[1]), std::string::npos);
}

// A FITHAW that fails during recovery leaves the filesystem the new agent's own, retried until it
// is thawed.
TEST_F(AgentTest, AThawThatFailsDuringRecoveryIsRetried) {
  use({"ext4", "xfs"});
  Process& host = start_sim({"freeze-no-thaw", "--hold-stdin"});
  Process& first = start_agent({.extra = {"--auto-thaw", "10min"}});
  ASSERT_EQ(reply_to(host, "FREEZE"), "HV_S_OK");
  first.kill(SIGKILL);
  first.wait();
  ASSERT_TRUE(intent_recorded());
  Process& second = start_agent({.faults = "thaw:" + mounts()[1] + "=fail:EIO:1"});
  EXPECT_TRUE(write_completes(mounts()[0]));
  EXPECT_TRUE(write_completes(mounts()[1]));  // by the retry
  host.write_stdin("done");
  EXPECT_EQ(host.wait(), 0);
  EXPECT_FALSE(intent_recorded());
  std::string log = stop_and_read_log(second);
  EXPECT_NE(log.find("recovery incomplete"), std::string::npos) << log;
  EXPECT_NE(log.find("the thaw that had failed succeeded"), std::string::npos) << log;
}

// An intent record that names what the agent would not freeze now (outside the allow-list, `/`)
// is never thawed by recovery.
TEST_F(AgentTest, RecoveryNeverThawsWhatTheCurrentAllowListDoesNotName) {
  use({"ext4", "xfs"});
  UniqueFd xfs(open(mounts()[1].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_EQ(ioctl(xfs.get(), FIFREEZE, 0), 0);  // someone else's freeze
  struct stat st {};
  ASSERT_EQ(stat(mounts()[1].c_str(), &st), 0);
  fs::create_directories(runtime_dir() + "/intent");
  std::string dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  std::ofstream(runtime_dir() + "/intent/" + dev) << mounts()[1] << "\n";  // a stale or forged entry
  Process& sim = start_sim({"idle", "--hold", "0"});
  Process& agent = start_agent({.only = std::vector<std::string>{mounts()[0]}});
  EXPECT_TRUE(sim.read_until({"\"registered\""}));
  EXPECT_EQ(sim.wait(), 0);
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find(mounts()[1] + " (" + dev + ") is not a filesystem this agent freezes now: left alone"),
            std::string::npos)
      << log;
  ProbeWriter probe(mounts()[1]);
  EXPECT_TRUE(probe.blocks()) << "recovery thawed a freeze the agent did not make";
  EXPECT_EQ(ioctl(xfs.get(), FITHAW, 0), 0);
  EXPECT_TRUE(probe.completes());
}

// No entry in the intent record, no FIFREEZE: with a full runtime directory nothing is frozen.
TEST_F(AgentTest, AFullRuntimeDirectoryFailsTheFreezeBeforeAnythingIsFrozen) {
  use({"ext4", "xfs"});
  fs::create_directories(runtime_dir());
  // Room for the lock file and the record's directory, not for one entry in it.
  run_capture("mount -t tmpfs -o size=64k,nr_inodes=3 hv-vss-full " + runtime_dir());
  struct Unmount {
    std::string path;
    ~Unmount() { run_capture("umount " + path); }
  } unmount{runtime_dir()};
  Process& sim = start_sim({"backup", "--hold", "0", "--expect", "FREEZE=HV_E_FAIL"});
  Process& agent = start_agent();
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_E_FAIL");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable(mounts()));
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("intent record (nothing was frozen)"), std::string::npos) << log;
}

// A wave of four is frozen in parallel; when no thread can be started (the pids cgroup or
// TasksMax= is full) the agent freezes in sequence instead of failing or dying.
TEST_F(AgentTest, WhenNoThreadCanBeStartedTheFilesystemsFreezeInSequence) {
  use({"ext4", "xfs", "btrfs", "ext4"});
  // One request per line, so that the second backup starts only once the cage is in place.
  Process& sim = start_sim({"stdin"});
  Process& agent = start_agent();
  auto request = [&sim](const std::string& op) {
    sim.write_stdin(op);
    return reply_to(sim, op);
  };
  for (const char* op : {"HOT_BACKUP", "FREEZE", "THAW"}) ASSERT_EQ(request(op), "HV_S_OK");  // with threads
  {
    PidsCage cage(agent.pid());
    if (!cage.available()) GTEST_SKIP() << "no pids cgroup controller on this machine";
    ASSERT_EQ(request("HOT_BACKUP"), "HV_S_OK");
    ASSERT_EQ(request("FREEZE"), "HV_S_OK");  // the second, without
    auto probes = probes_blocked_on_every_mount();
    EXPECT_EQ(request("THAW"), "HV_S_OK");
    for (auto& p : probes) EXPECT_TRUE(p->completes());
  }  // out of the cage before it exits: LeakSanitizer starts a thread for its check
  sim.close_stdin();
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_NE(stop_and_read_log(agent).find("cannot start a thread"), std::string::npos);
}

TEST_F(AgentTest, ARuntimeDirectoryOnAFilesystemItWouldFreezeIsRefused) {
  use({"ext4"});
  std::string log = dir() + "/refused.log";
  Process& agent = start_agent({.log = log, .runtime_dir = mounts()[0] + "/run"});
  EXPECT_EQ(agent.wait(), 1);
  EXPECT_NE(slurp(log).find("the runtime directory " + mounts()[0] + "/run is on " + mounts()[0]), std::string::npos)
      << slurp(log);
}

TEST_F(AgentTest, ChannelLossWhileFrozenThawsAndReRegisters) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"disconnect-while-frozen", "--hold-stdin"});
  start_agent();
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  ASSERT_TRUE(sim.read_until({"\"device_destroyed\""}));
  ASSERT_TRUE(sim.read_until({"\"registered\""}));
  EXPECT_TRUE(all_writable(mounts()));  // thawed before the host sent anything else
  sim.write_stdin("go on");
  EXPECT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, HibernationThawIsObeyedAndTheAgentReRegisters) {
  use({"ext4", "xfs", "btrfs"});
  Process& sim = start_sim({"fake-hibernate-thaw", "--hold", "0"});
  start_agent();
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  auto rejected = sim.read_until({"\"write_rejected\""});
  ASSERT_TRUE(rejected);
  EXPECT_EQ(json_field(*rejected, "reason"), "Transaction not active");
  EXPECT_TRUE(sim.read_until({"\"registered\""}));
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_TRUE(all_writable(mounts()));
}

TEST_F(AgentTest, LoopFilesystemOnAFrozenFilesystemIsFrozenFirstAndThawedLast) {
  // xfs on a loop device whose image lives on the scratch ext4: freezing the ext4 first would
  // leave the xfs freeze hanging on its own image.
  use({"ext4"});
  Scratch inner({"xfs"}, mounts()[0]);
  Process& sim = start_sim({"backup", "--hold", "0"});
  Process& agent = start_agent({.only = std::vector<std::string>{mounts()[0], inner.mounts()[0]}});
  EXPECT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
  std::string log = stop_and_read_log(agent);
  EXPECT_NE(log.find("froze 2 filesystem(s): " + inner.mounts()[0] + ", " + mounts()[0]), std::string::npos) << log;
  EXPECT_NE(log.find("thawed 2 filesystem(s): " + mounts()[0] + ", " + inner.mounts()[0]), std::string::npos) << log;
}

TEST_F(AgentTest, SysfsNamesTheImageBehindALoopMountedFilesystem) {
  use({"ext4"});
  struct stat st {};
  ASSERT_EQ(stat(mounts()[0].c_str(), &st), 0);
  auto files = fsfreeze::sysfs_loop_backing_files(major(st.st_dev), minor(st.st_dev));
  EXPECT_EQ(files, std::vector<std::string>{dir() + "/0-ext4.img"});
  ASSERT_EQ(stat("/", &st), 0);  // the machine's own disk is not a loop device
  EXPECT_TRUE(fsfreeze::sysfs_loop_backing_files(major(st.st_dev), minor(st.st_dev)).empty());
}

TEST_F(AgentTest, TellsSystemdWhenItIsReadyAndWhatItLastDid) {
  use({"ext4"});
  std::string path = dir() + "/notify";
  UniqueFd notify = bind_datagram(path);
  ASSERT_TRUE(notify);
  Process& sim = start_sim({"backup", "--hold", "0"});
  start_agent({.env = {"NOTIFY_SOCKET=" + path}});
  std::string ready = next_datagram(notify.get());
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=Registered on " + socket()), std::string::npos) << ready;
  std::string last;
  for (std::string m; (m = next_datagram(notify.get())).find("THAW") == std::string::npos && !m.empty();) {
    EXPECT_EQ(m.find("WATCHDOG"), std::string::npos) << "pinged without WATCHDOG_USEC: " << m;
    last = m;
  }
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_NE(last.find("STATUS=Last request FREEZE answered HV_S_OK; frozen"), std::string::npos) << last;
}

TEST_F(AgentTest, PingsSystemdsWatchdogFromItsLoopWhileFilesystemsAreFrozen) {
  use({"ext4"});
  std::string path = dir() + "/notify";
  UniqueFd notify = bind_datagram(path);
  ASSERT_TRUE(notify);
  Process& sim = start_sim({"backup", "--hold-stdin"});
  start_agent({.env = {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}});
  ASSERT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  int pings = 0;
  for (std::string m; pings < 3 && !(m = next_datagram(notify.get())).empty();)
    if (m.find("WATCHDOG=1") != std::string::npos) ++pings;
  EXPECT_EQ(pings, 3);
  sim.write_stdin("thaw");
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
}

// Takes the auto-thaw's delay, 10 s: the shortest that the range check of --auto-thaw allows.
TEST_F(AgentTest, ANotifySocketNobodyReadsNeverHoldsUpRepliesOrAutoThawAndHearsTheLatestOnceDrained) {
  use({"ext4", "xfs"});
  std::string path = dir() + "/notify";
  UniqueFd notify = bind_datagram(path);
  ASSERT_TRUE(notify);
  ASSERT_GT(fill_datagram_socket(path, "FILLER=1"), 0);  // no room for the agent's first message
  Process& sim = start_sim({"freeze-no-thaw", "--hold-stdin"});
  Process& agent = start_agent({.extra = {"--auto-thaw", "10s"}, .env = {"NOTIFY_SOCKET=" + path}});
  ASSERT_EQ(reply_to(sim, "HOT_BACKUP"), "HV_S_OK");
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  auto probes = probes_blocked_on_every_mount();
  for (auto& p : probes) EXPECT_TRUE(p->completes());  // thawed automatically
  // Once the socket drains, systemd gets what it missed as one message: READY=1 is not lost.
  std::string message;
  while ((message = next_datagram(notify.get())) == "FILLER=1") continue;
  EXPECT_NE(message.find("READY=1"), std::string::npos) << message;
  EXPECT_NE(message.find("STATUS=Last request FREEZE answered HV_S_OK; frozen"), std::string::npos) << message;
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(AgentTest, ThawWhileIdleIsAnsweredOk) {
  use({"ext4"});
  Process& sim = start_sim({"thaw-idle"});
  start_agent();
  EXPECT_EQ(reply_to(sim, "THAW"), "HV_S_OK");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, UnknownOperationsAndBadFramesGetErrorRepliesAndTheAgentStaysUp) {
  use({"ext4"});
  Process& unknown = start_sim({"unknown-op", "--hold", "0"});
  Process& agent = start_agent();
  EXPECT_EQ(unknown.wait(), 0);
  Process& bad = start_sim({"bad-frame", "--hold", "0"});
  EXPECT_EQ(reply_to(bad, "FRAME_5_BYTES"), "HV_E_FAIL");
  EXPECT_EQ(reply_to(bad, "FRAME_20_BYTES"), "HV_E_FAIL");
  EXPECT_EQ(bad.wait(), 0);
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(AgentTest, SecondAgentIsRefusedWithAClearMessage) {
  use({"ext4"});
  Process& sim = start_sim({"backup", "--hold-stdin"});
  start_agent();
  ASSERT_TRUE(sim.read_until({"\"registered\""}));
  // A second agent with its own runtime directory (with the same one it would not even get
  // as far as the device: see SecondAgentOnTheSameRuntimeDirectoryStartsNothing).
  std::string second_log = dir() + "/second.log";
  Process& second = start_agent({.log = second_log, .runtime_dir = dir() + "/run2"});
  EXPECT_EQ(second.wait(), 1);
  EXPECT_NE(slurp(second_log).find("another VSS daemon is probably connected"), std::string::npos) << slurp(second_log);
  EXPECT_TRUE(sim.read_until({"\"client_refused\""}));
  sim.write_stdin("thaw");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, SecondAgentOnTheSameRuntimeDirectoryStartsNothing) {
  use({"ext4"});
  Process& sim = start_sim({"freeze-no-thaw", "--hold-stdin"});
  start_agent();
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  std::string second_log = dir() + "/second.log";
  Process& second = start_agent({.log = second_log});
  EXPECT_EQ(second.wait(), 1);
  EXPECT_NE(slurp(second_log).find("another hv-vss-agent (pid"), std::string::npos) << slurp(second_log);
  // Above all, it did not "recover" the live agent's freeze.
  ProbeWriter probe(mounts()[0]);
  EXPECT_TRUE(probe.blocks());
  EXPECT_TRUE(intent_recorded());
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, KeepsAnsweringWhenItsOwnLogFileIsOnAFrozenFilesystem) {
  use({"ext4", "xfs"});
  Process& sim = start_sim({"repeat", "3", "--hold", "0.2"});
  Process& agent = start_agent({.log = mounts()[0] + "/agent.log"});
  EXPECT_EQ(sim.wait(), 0);
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
  EXPECT_NE(slurp(mounts()[0] + "/agent.log").find("[txn=3 op=THAW"), std::string::npos);
}

TEST_F(AgentTest, AllowListNamingANonMountFreezesNothing) {
  use({"ext4"});
  fs::create_directory(dir() + "/not-a-mount");
  Process& sim =
      start_sim({"backup", "--hold", "0", "--expect", "HOT_BACKUP=HV_E_FAIL", "--expect", "FREEZE=HV_E_FAIL"});
  Process& agent = start_agent({.only = std::vector<std::string>{dir() + "/not-a-mount"}});
  EXPECT_EQ(sim.wait(), 0);
  EXPECT_NE(stop_and_read_log(agent).find("not-a-mount, which is not a visible mount point"), std::string::npos);
  EXPECT_FALSE(intent_recorded());
}

TEST_F(AgentTest, StoppingWhileFrozenThawsBeforeExit) {
  use({"ext4", "btrfs"});
  Process& sim = start_sim({"freeze-no-thaw", "--hold-stdin"});
  Process& agent = start_agent();
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  ProbeWriter probe(mounts()[1]);
  ASSERT_TRUE(probe.blocks());
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
  EXPECT_TRUE(probe.completes());
  EXPECT_FALSE(intent_recorded());
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, SigtermWhileTheHostLeavesRegistrationUnansweredStopsTheAgent) {
  use({"ext4"});
  FakeHost host(socket());
  Process& agent = start_agent();
  UniqueFd channel = host.accept();
  ASSERT_TRUE(channel);
  std::vector<std::byte> hello = FakeHost::receive(channel.get());
  ASSERT_EQ(hello.size(), kFrameSize);
  EXPECT_EQ(static_cast<uint8_t>(hello[0]), static_cast<uint8_t>(Op::Register1));
  // The agent waits for a version reply that never comes; its loop must still serve signals.
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
}

TEST_F(AgentTest, AFirstRegistrationNeverAnsweredEndsTheAgentWithAClearMessage) {
  use({"ext4"});
  FakeHost host(socket());
  Process& agent = start_agent();
  UniqueFd channel = host.accept();
  ASSERT_TRUE(channel);
  ASSERT_EQ(FakeHost::receive(channel.get()).size(), kFrameSize);
  EXPECT_EQ(agent.wait(), 1);
  EXPECT_NE(slurp(agent_log()).find(socket() + ": no version reply within 5000 ms of REGISTER1"), std::string::npos)
      << slurp(agent_log());
}

TEST_F(AgentTest, AHostThatTakesNoMoreConnectionsEndsTheStartInsteadOfHangingIt) {
  use({"ext4"});
  FakeHost host(socket(), 0);
  host.fill_backlog();
  Process& agent = start_agent();
  EXPECT_EQ(agent.wait(), 1);
  EXPECT_NE(slurp(agent_log()).find(socket() + " does not take the connection: its listen backlog is full"),
            std::string::npos)
      << slurp(agent_log());
}

TEST_F(AgentTest, AReplyTheHostDoesNotReadLosesTheChannelAndThaws) {
  use({"ext4", "xfs"});
  FakeHost host(socket());
  Process& agent = start_agent();
  UniqueFd channel = host.accept();
  ASSERT_TRUE(channel);
  ASSERT_EQ(FakeHost::receive(channel.get()).size(), kFrameSize);  // REGISTER1
  uint32_t version = kKernelVersion;
  ASSERT_TRUE(FakeHost::send(channel.get(), &version, sizeof version));
  for (Op op : {Op::HotBackup, Op::Freeze}) {
    Frame request = encode_request(static_cast<uint8_t>(op));
    ASSERT_TRUE(FakeHost::send(channel.get(), request.data(), request.size()));
    std::vector<std::byte> reply = FakeHost::receive(channel.get());
    ASSERT_EQ(reply.size(), kFrameSize);
    Frame frame;
    std::copy(reply.begin(), reply.end(), frame.begin());
    EXPECT_EQ(reply_status(frame), static_cast<uint32_t>(HvStatus::Ok)) << op_name(static_cast<uint8_t>(op));
  }
  auto probes = probes_blocked_on_every_mount();
  // From here on the host reads nothing: the replies pile up until the socket takes no more.
  ASSERT_TRUE(flood_until_hangup(channel.get()));
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  // It registers again (on a connection left in the backlog, never answered) and obeys SIGTERM.
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
  EXPECT_FALSE(intent_recorded());
  EXPECT_NE(slurp(agent_log()).find("the reply could not be written at once"), std::string::npos);
}

TEST_F(AgentTest, ExitsAndThawsOnSigtermWhileNobodyReadsItsStderr) {
  use({"ext4", "xfs"});
  std::string fifo = dir() + "/stderr.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  UniqueFd reader(open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));  // kept open, never read
  {
    UniqueFd writer(open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    std::string page(4096, 'x');
    while (write(writer.get(), page.data(), page.size()) > 0) continue;
    ASSERT_EQ(errno, EAGAIN);  // full: the agent's first log line will wait
  }
  Process& sim = start_sim({"freeze-no-thaw", "--hold-stdin"});
  Process& agent = start_agent({.log = fifo});
  ASSERT_EQ(reply_to(sim, "FREEZE"), "HV_S_OK");
  auto probes = probes_blocked_on_every_mount();
  ASSERT_TRUE(sleeps_in(agent.pid(), "pipe_write"));  // its log writer is stuck
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
  for (auto& p : probes) EXPECT_TRUE(p->completes());
  EXPECT_FALSE(intent_recorded());
  sim.write_stdin("done");
  EXPECT_EQ(sim.wait(), 0);
}

TEST_F(AgentTest, ADevicePathLinkedToAnotherCharacterDeviceIsRefusedByName) {
  use({"ext4"});
  std::string link = dir() + "/hv_vss";
  fs::create_symlink("/dev/null", link);
  Process& agent = start_agent({.device = link});
  EXPECT_EQ(agent.wait(), 1);
  EXPECT_NE(slurp(agent_log())
                .find(link + " is the character device /dev/null (1:3, class mem), not the Hyper-V "
                             "VSS device (the misc device vmbus/hv_vss)"),
            std::string::npos)
      << slurp(agent_log());
}

TEST_F(AgentTest, NothingIsWrittenToACharacterDeviceThatIsNotTheVssDevice) {
  use({"ext4"});
  // A pseudo-terminal shows on its master side whatever is written to the terminal.
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(master);
  ASSERT_EQ(grantpt(master.get()), 0);
  ASSERT_EQ(unlockpt(master.get()), 0);
  std::string terminal = ptsname(master.get());
  UniqueFd ours(open(terminal.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  termios raw{};
  ASSERT_EQ(tcgetattr(ours.get(), &raw), 0);
  cfmakeraw(&raw);
  ASSERT_EQ(tcsetattr(ours.get(), TCSANOW, &raw), 0);
  std::string link = dir() + "/hv_vss";
  fs::create_symlink(terminal, link);
  Process& agent = start_agent({.device = link});
  EXPECT_EQ(agent.wait(), 1);
  // Our own marker comes after anything the agent wrote, as the terminal keeps the order.
  ASSERT_EQ(write(ours.get(), "END", 3), 3);
  std::string seen;
  while (!seen.ends_with("END")) {
    pollfd pfd{master.get(), POLLIN, 0};
    char buf[256];
    ssize_t n = poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kPatience).count())) == 1
                    ? read(master.get(), buf, sizeof buf)
                    : -1;
    ASSERT_GT(n, 0);
    seen.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(seen.size(), 3u) << "the agent wrote " << seen.size() - 3 << " byte(s) to " << terminal;
  EXPECT_NE(slurp(agent_log()).find("not the Hyper-V VSS device"), std::string::npos) << slurp(agent_log());
}

TEST(AgentCommandLine, BadOptionValueIsAnErrorNamingTheOption) {
  std::string log = "/tmp/hv-vss-cli-" + std::to_string(getpid()) + ".log";
  Process agent({agent_bin(), "--config", "/dev/null", "--reply-budget", "soon"}, log);
  EXPECT_EQ(agent.wait(), 2);
  EXPECT_NE(slurp(log).find("--reply-budget: invalid duration 'soon'"), std::string::npos) << slurp(log);
  fs::remove(log);
}

TEST(AgentCommandLine, ConfigErrorNamesFileAndLine) {
  std::string conf = "/tmp/hv-vss-cli-" + std::to_string(getpid()) + ".conf", log = conf + ".log";
  std::ofstream(conf) << "[Agent]\nReplyBudgetSec=10\nFreezeAll=yes\n";
  Process agent({agent_bin(), "--config", conf}, log);
  EXPECT_EQ(agent.wait(), 2);
  EXPECT_NE(slurp(log).find(conf + ":3: unknown key 'FreezeAll' in section [Agent]"), std::string::npos) << slurp(log);
  fs::remove(conf);
  fs::remove(log);
}

}  // namespace
}  // namespace hvvss::test
