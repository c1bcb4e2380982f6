#include "tests/integration/harness.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace hvvss::test {

std::string run_capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (pclose(pipe) != 0) throw std::runtime_error("failed: " + command + "\n" + out);
  return out;
}

namespace {

// Reads a /proc file; "" once the task is gone (ESRCH), which iostreams would throw on.
std::string read_proc(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string text;
  char buf[4096];
  ssize_t n;
  while (fd && (n = read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

// Blocked by a freeze: asleep uninterruptibly on the superblock's freeze lock (a per-cpu
// rw-semaphore), not merely waiting for a disk read; where the kernel hides stacks, the D
// state alone has to do.
// A task (/proc/PID/task/TID) asleep uninterruptibly with `function` on its kernel stack.
bool asleep_in(const std::string& task, std::string_view function) {
  std::string stat = read_proc(task + "/stat");
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'D') return false;
  static const bool stacks_visible = !read_proc("/proc/self/stack").empty();
  return !stacks_visible || read_proc(task + "/stack").find(function) != std::string::npos;
}

bool blocked_by_freeze(pid_t tid) { return asleep_in("/proc/self/task/" + std::to_string(tid), "percpu_rwsem"); }

// A scratch root of this process's own: made on first use, removed at exit (if the tests left
// it empty, as they do).
struct OwnScratchRoot {
  std::string path = "/tmp/hv-vss-tests.XXXXXX";
  OwnScratchRoot() {
    if (!mkdtemp(path.data())) throw std::runtime_error("mkdtemp failed: " + path);
  }
  ~OwnScratchRoot() { rmdir(path.c_str()); }
};

}  // namespace

std::string agent_bin() { return HV_VSS_AGENT_BIN; }
std::string fault_shim() { return HV_VSS_FAULT_SHIM; }
std::string sim_bin() { return HV_VSS_SIM_BIN; }

std::string Scratch::root() {
  if (const char* env = std::getenv("HV_VSS_SCRATCH_ROOT"); env && *env) return env;
  static const OwnScratchRoot own;
  return own.path;
}

Scratch::Scratch(const std::vector<std::string>& types, const std::string& parent) {
  std::filesystem::create_directories(parent);
  std::string templ = parent + "/XXXXXX";
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed in " + parent);
  dir_ = templ;
  std::string command = std::string(HV_VSS_SCRATCH_TOOL) + " create " + dir_;
  for (const auto& t : types) command += " " + t;
  try {
    std::string out = run_capture(command);
    for (size_t start = 0, nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
      mounts_.push_back(out.substr(start, nl - start));
  } catch (...) {
    run_capture(std::string(HV_VSS_SCRATCH_TOOL) + " destroy " + dir_);
    throw;
  }
}

Scratch::~Scratch() {
  try {
    run_capture(std::string(HV_VSS_SCRATCH_TOOL) + " destroy " + dir_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scratch cleanup: %s\n", e.what());
  }
}

Process::Process(std::vector<std::string> argv, const std::string& stderr_path, bool with_stdin,
                 const std::vector<std::string>& extra_env) {
  // Everything the child needs is made before fork(): after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=') + 1); };
  std::vector<std::string> env_strings = extra_env;
  for (char** e = environ; *e; ++e) {
    bool overridden = false;
    for (const auto& extra : extra_env) overridden = overridden || name_of(extra) == name_of(*e);
    if (!overridden) env_strings.emplace_back(*e);
  }
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  int out[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || (with_stdin && pipe2(in, O_CLOEXEC) != 0)) throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ == 0) {
    int err = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    dup2(out[1], STDOUT_FILENO);
    if (err >= 0) dup2(err, STDERR_FILENO);
    if (with_stdin) dup2(in[0], STDIN_FILENO);
    execvpe(args[0], args.data(), env.data());
    _exit(127);
  }
  close(out[1]);
  out_ = UniqueFd(out[0]);
  if (with_stdin) {
    close(in[0]);
    in_ = UniqueFd(in[1]);
  }
}

Process::~Process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::optional<std::string> Process::read_line(Clock::duration timeout) {
  auto until = Clock::now() + timeout;
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd pfd{out_.get(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_.get(), buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::optional<std::string> Process::read_until(const std::vector<std::string>& fragments, Clock::duration timeout) {
  auto until = Clock::now() + timeout;
  while (auto line = read_line(std::max<Clock::duration>(Clock::duration::zero(), until - Clock::now()))) {
    bool all = true;
    for (const auto& f : fragments) all = all && line->find(f) != std::string::npos;
    if (all) return line;
  }
  return std::nullopt;
}

void Process::write_stdin(const std::string& line) {
  std::string text = line + "\n";
  [[maybe_unused]] ssize_t n = write(in_.get(), text.data(), text.size());
}

int Process::wait(Clock::duration timeout) {
  if (status_) return *status_;
  auto until = Clock::now() + timeout;
  // pidfd lets poll() wait for the exit without sleeping in a loop.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
  pollfd pfd{pidfd.get(), POLLIN, 0};
  if (poll(&pfd, 1, static_cast<int>(std::max<long long>(left, 0))) <= 0) {
    kill(SIGKILL);
    waitpid(pid_, nullptr, 0);
    status_ = -1;
    return -1;
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return *status_;
}

void Process::kill(int sig) { ::kill(pid_, sig); }

ProbeWriter::ProbeWriter(const std::string& dir) : dir_(dir) {}

ProbeWriter::~ProbeWriter() {
  if (thread_.joinable()) {
    // Never hang the suite on a filesystem a failed test left frozen: it is ours, thaw it.
    UniqueFd d(open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (done_.wait_for(0s) != std::future_status::ready) ioctl(d.get(), FITHAW, 0);
    thread_.join();
  }
}

bool ProbeWriter::blocks() {
  tid_ = 0;
  std::promise<void> finished;
  done_ = finished.get_future().share();
  thread_ = std::thread([this, finished = std::move(finished)]() mutable {
    tid_ = static_cast<pid_t>(syscall(SYS_gettid));
    UniqueFd fd(open((dir_ + "/probe").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    [[maybe_unused]] ssize_t n = write(fd.get(), "probe\n", 6);
    finished.set_value();
  });
  // There is no event for "entered D state": look at the task state until either happens.
  auto until = Clock::now() + kPatience;
  while (Clock::now() < until) {
    if (done_.wait_for(0s) == std::future_status::ready) {
      thread_.join();
      return false;
    }
    if (tid_ != 0 && blocked_by_freeze(tid_)) return true;
    std::this_thread::yield();
  }
  return false;
}

bool ProbeWriter::completes(Clock::duration timeout) {
  if (done_.wait_for(timeout) != std::future_status::ready) return false;
  thread_.join();
  return true;
}

StuckWriter::StuckWriter(const std::string& dir) : page_size_(static_cast<size_t>(sysconf(_SC_PAGESIZE))) {
  uffd_ = UniqueFd(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC)));
  uffdio_api api{.api = UFFD_API, .features = 0, .ioctls = 0};
  if (!uffd_ || ioctl(uffd_.get(), UFFDIO_API, &api) != 0)
    throw std::runtime_error(std::string("userfaultfd: ") + std::strerror(errno));
  page_ = mmap(nullptr, page_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uffdio_register reg{
      .range = {reinterpret_cast<uint64_t>(page_), page_size_}, .mode = UFFDIO_REGISTER_MODE_MISSING, .ioctls = 0};
  if (page_ == MAP_FAILED || ioctl(uffd_.get(), UFFDIO_REGISTER, &reg) != 0)
    throw std::runtime_error(std::string("userfaultfd register: ") + std::strerror(errno));
  thread_ = std::thread([this, path = dir + "/stuck"] {
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    [[maybe_unused]] ssize_t n = write(fd.get(), page_, page_size_);
  });
  // The fault arrives once the write holds the superblock's writer count and copies the page.
  uffd_msg msg{};
  if (read(uffd_.get(), &msg, sizeof msg) != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT)
    throw std::runtime_error("userfaultfd: no page fault from the stuck writer");
}

void StuckWriter::release() {
  if (!thread_.joinable()) return;
  uffdio_zeropage zero{.range = {reinterpret_cast<uint64_t>(page_), page_size_}, .mode = 0, .zeropage = 0};
  ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &zero);
  thread_.join();
}

StuckWriter::~StuckWriter() {
  release();
  munmap(page_, page_size_);
}

bool stuck_in_freeze(pid_t pid) {
  auto until = Clock::now() + kPatience;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  while (Clock::now() < until) {
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec))
      if (asleep_in(task.path(), "freeze_super")) return true;
    if (ec) return false;  // the process is gone
    std::this_thread::yield();
  }
  return false;
}

namespace {
void write_file(const std::string& path, const std::string& text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}
}  // namespace

PidsCage::PidsCage(pid_t pid) : pid_(pid) {
  if (read_proc("/sys/fs/cgroup/cgroup.controllers").find("pids") != std::string::npos)
    root_ = "/sys/fs/cgroup";
  else if (std::filesystem::exists("/sys/fs/cgroup/pids/cgroup.procs"))
    root_ = "/sys/fs/cgroup/pids";
  else
    return;
  dir_ = root_ + "/hv-vss-test-" + std::to_string(getpid());
  std::filesystem::create_directory(dir_);
  write_file(dir_ + "/cgroup.procs", std::to_string(pid));
  // Below what it has: its threads go on, but no new one can start (pids.current may still count
  // threads that have just exited, so it is no bound).
  write_file(dir_ + "/pids.max", "1");
}

PidsCage::~PidsCage() {
  if (dir_.empty()) return;
  try {
    if (::kill(pid_, 0) == 0) write_file(root_ + "/cgroup.procs", std::to_string(pid_));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pids cage: %s\n", e.what());
  }
  rmdir(dir_.c_str());
}

bool write_completes(const std::string& mount) {
  ProbeWriter probe(mount);
  return !probe.blocks() || probe.completes();
}

bool sleeps_in(pid_t pid, std::string_view function) {
  auto until = Clock::now() + kPatience;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  while (Clock::now() < until) {
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec))
      if (read_proc(task.path() / "wchan").find(function) != std::string::npos) return true;
    if (ec) return false;  // the process is gone
    std::this_thread::yield();
  }
  return false;
}

namespace {
sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

bool wait_for(int fd, short events) {
  pollfd pfd{fd, events, 0};
  return poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kPatience).count())) == 1;
}
}  // namespace

FakeHost::FakeHost(const std::string& path, int backlog) : path_(path) {
  sockaddr_un addr = unix_address(path);
  listener_ = UniqueFd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!listener_ || bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener_.get(), backlog) != 0)
    throw std::runtime_error("fake host on " + path + ": " + std::strerror(errno));
}

FakeHost::~FakeHost() { unlink(path_.c_str()); }

void FakeHost::fill_backlog() {
  sockaddr_un addr = unix_address(path_);
  for (;;) {
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (errno == EAGAIN) return;
      throw std::runtime_error(std::string("filling the backlog: ") + std::strerror(errno));
    }
    fillers_.push_back(std::move(fd));
  }
}

UniqueFd FakeHost::accept() {
  if (!wait_for(listener_.get(), POLLIN)) return {};
  return UniqueFd(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

std::vector<std::byte> FakeHost::receive(int fd) {
  std::vector<std::byte> frame(256);
  ssize_t n = wait_for(fd, POLLIN) ? recv(fd, frame.data(), frame.size(), 0) : -1;
  frame.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return frame;
}

bool FakeHost::send(int fd, const void* data, size_t size) {
  return ::send(fd, data, size, MSG_NOSIGNAL) == static_cast<ssize_t>(size);
}

bool all_writable(const std::vector<std::string>& mounts) {
  for (const auto& m : mounts) {
    ProbeWriter probe(m);
    if (probe.blocks()) return false;
  }
  return true;
}

std::string json_field(const std::string& line, const std::string& key) {
  std::string needle = "\"" + key + "\":";
  auto pos = line.find(needle);
  if (pos == std::string::npos) return {};
  pos += needle.size();
  if (line[pos] == '"') {
    auto end = line.find('"', pos + 1);
    return line.substr(pos + 1, end - pos - 1);
  }
  auto end = line.find_first_of(",}", pos);
  return line.substr(pos, end - pos);
}

}  // namespace hvvss::test
