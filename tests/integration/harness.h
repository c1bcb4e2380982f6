// Test harness for the integration suite: scratch loop-mounted filesystems that are always
// thawed and removed, child processes with line-oriented pipes, a probe writer that proves by
// the kernel's own task state that writes block on a frozen filesystem, and a fake host.
#pragma once

#include "agent/unique_fd.h"

#include <sys/types.h>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace hvvss::test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Upper bound for anything a test waits for: only there so a broken build cannot hang CI.
inline constexpr auto kPatience = 30s;

// Loop-mounted filesystems of the given types under a fresh directory (tools/scratch-mounts),
// by default in the suite's scratch root, or inside `parent` (e.g. on another scratch mount).
class Scratch {
 public:
  explicit Scratch(const std::vector<std::string>& types, const std::string& parent = root());
  ~Scratch();
  // $HV_VSS_SCRATCH_ROOT, or else a directory made for this process and removed at its exit.
  static std::string root();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  const std::string& dir() const { return dir_; }
  const std::vector<std::string>& mounts() const { return mounts_; }

 private:
  std::string dir_;
  std::vector<std::string> mounts_;
};

// A child process; stdout (and optionally stdin) are pipes, stderr goes to a file. argv[0] is
// looked up in $PATH unless it has a slash; `extra_env` ("NAME=value") is added to the environment.
class Process {
 public:
  Process(std::vector<std::string> argv, const std::string& stderr_path, bool with_stdin = false,
          const std::vector<std::string>& extra_env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  std::optional<std::string> read_line(Clock::duration timeout = kPatience);
  // Reads lines until one contains every fragment; returns it (nullopt at timeout or EOF).
  std::optional<std::string> read_until(const std::vector<std::string>& fragments, Clock::duration timeout = kPatience);
  void write_stdin(const std::string& line);
  void close_stdin() { in_.reset(); }  // the child reads end of file
  // Exit status, or -1 if it did not exit in time (it is then killed).
  int wait(Clock::duration timeout = kPatience);
  void kill(int sig);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  UniqueFd out_, in_;
  std::string buffer_;
  std::optional<int> status_;
};

// Creates and writes a file on a filesystem from its own thread, so that the test never blocks.
class ProbeWriter {
 public:
  explicit ProbeWriter(const std::string& dir);
  ~ProbeWriter();
  ProbeWriter(const ProbeWriter&) = delete;
  ProbeWriter& operator=(const ProbeWriter&) = delete;

  // Starts a write; true once the writing thread sleeps uninterruptibly in the kernel (the
  // filesystem is frozen), false if the write completed instead.
  bool blocks();
  // Waits for the started write to complete.
  bool completes(Clock::duration timeout = kPatience);

 private:
  std::string dir_;
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::shared_future<void> done_;
};

// Runs a shell command; throws with its output if it fails.
std::string run_capture(const std::string& command);

// Makes a FIFREEZE of a filesystem wait for as long as the test wants: a thread write()s into a
// file there from a page that userfaultfd keeps missing, so the write sits in the kernel holding
// the superblock's writer count, which a freeze must drain. release() supplies the page.
class StuckWriter {
 public:
  explicit StuckWriter(const std::string& dir);  // returns once the write is stuck
  ~StuckWriter();
  StuckWriter(const StuckWriter&) = delete;
  StuckWriter& operator=(const StuckWriter&) = delete;
  void release();

 private:
  UniqueFd uffd_;
  void* page_ = nullptr;
  size_t page_size_ = 0;
  std::thread thread_;
};

// True once a thread of process `pid` waits inside a FIFREEZE (freeze_super), within kPatience.
bool stuck_in_freeze(pid_t pid);

// True once a write to `mount` completes, at once or within kPatience (it is, or gets, thawed).
bool write_completes(const std::string& mount);

// Moves a process into a pids cgroup of its own that admits no new task, so that it cannot start
// another thread (a full TasksMax=); undone when this goes away.
// available() is false where no pids controller is mounted (cgroup v2 or v1).
class PidsCage {
 public:
  explicit PidsCage(pid_t pid);
  ~PidsCage();
  PidsCage(const PidsCage&) = delete;
  PidsCage& operator=(const PidsCage&) = delete;
  bool available() const { return !dir_.empty(); }

 private:
  std::string root_, dir_;
  pid_t pid_;
};

// True once a thread of process `pid` sleeps in a kernel function whose name contains
// `function` (its wchan), within kPatience: "pipe_write" for a write to a full pipe.
bool sleeps_in(pid_t pid, std::string_view function);

// A host of the test's own on a SOCK_SEQPACKET socket, for faults that the simulator does not
// play: a host that never answers REGISTER1, never accepts, or never reads its replies.
class FakeHost {
 public:
  explicit FakeHost(const std::string& path, int backlog = 4);
  ~FakeHost();
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // Connects sockets of its own until the listen backlog is full, so that nothing more gets in.
  void fill_backlog();
  // The next connection; an invalid descriptor if none came within kPatience.
  UniqueFd accept();
  // Reads one frame from a connection (empty at EOF or after kPatience).
  static std::vector<std::byte> receive(int fd);
  static bool send(int fd, const void* data, size_t size);

 private:
  std::string path_;
  UniqueFd listener_;
  std::vector<UniqueFd> fillers_;
};

// True if every probe's write completes straight away (nothing is frozen).
bool all_writable(const std::vector<std::string>& mounts);

// Reads a field of a one-line JSON object as its raw text ("FREEZE" → FREEZE, 1.5 → 1.5).
std::string json_field(const std::string& line, const std::string& key);

std::string agent_bin();
std::string fault_shim();
std::string sim_bin();

}  // namespace hvvss::test
