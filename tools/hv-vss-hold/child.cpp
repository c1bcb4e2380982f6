#include "tools/hv-vss-hold/child.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

namespace hvvss::hold {
namespace {

std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=') + 1); }

std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> env = extra;
  for (char** e = environ; *e; ++e) {
    bool replaced = false;
    for (const auto& x : extra) replaced = replaced || name_of(x) == name_of(*e);
    if (!replaced) env.emplace_back(*e);
  }
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  p.reserve(strings.size() + 1);
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// posix_spawn's attributes and file actions, destroyed with the scope.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  int err = 0;
  SpawnSetup() {
    err = posix_spawnattr_init(&attr);
    if (err == 0) err = posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // The child gets an empty signal mask; SIGPIPE goes back to its default, while the SIGTERM and
  // SIGINT that hv-vss-hold ignores (and reads from a signalfd) stay ignored across the exec.
  void signals() {
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
    if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (err == 0) err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  void dup(int fd, int target) {
    if (err == 0) err = posix_spawn_file_actions_adddup2(&actions, fd, target);
  }
};

}  // namespace

Status ChildProcess::spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           std::unique_ptr<ChildProcess>* out) {
  std::unique_ptr<ChildProcess> child(new ChildProcess);
  child->name_ = argv.at(0);
  int in[2], stdout_pipe[2], stderr_pipe[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Status::from_errno(errno, "cannot make a pipe");
  UniqueFd in_read(in[0]);
  child->in_ = UniqueFd(in[1]);
  if (pipe2(stdout_pipe, O_CLOEXEC) != 0) return Status::from_errno(errno, "cannot make a pipe");
  UniqueFd out_write(stdout_pipe[1]);
  child->out_ = UniqueFd(stdout_pipe[0]);
  if (pipe2(stderr_pipe, O_CLOEXEC) != 0) return Status::from_errno(errno, "cannot make a pipe");
  UniqueFd err_write(stderr_pipe[1]);
  child->err_ = UniqueFd(stderr_pipe[0]);
  for (int fd : {child->out_.get(), child->err_.get()})
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) return Status::from_errno(errno, "cannot make a pipe non-blocking");

  SpawnSetup setup;
  setup.signals();
  setup.dup(in_read.get(), STDIN_FILENO);
  setup.dup(out_write.get(), STDOUT_FILENO);
  setup.dup(err_write.get(), STDERR_FILENO);
  if (setup.err != 0) return Status::from_errno(setup.err, "cannot prepare to start the client");
  std::vector<std::string> args = argv, environment = environment_with(env);
  std::vector<char*> arg_pointers = pointers(args), env_pointers = pointers(environment);
  if (int err = posix_spawnp(&child->pid_, arg_pointers[0], &setup.actions, &setup.attr, arg_pointers.data(),
                             env_pointers.data());
      err != 0)
    return Status::from_errno(err, fmt::format("cannot run {}", child->name_));
  child->pidfd_ = UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, child->pid_, 0)));
  if (!child->pidfd_) {
    Status failed = Status::from_errno(errno, fmt::format("cannot watch {} (pidfd_open)", child->name_));
    child->kill();
    waitpid(child->pid_, nullptr, 0);
    child->reaped_ = true;
    return failed;
  }
  *out = std::move(child);
  return {};
}

ChildProcess::~ChildProcess() {
  if (reaped_ || pid_ <= 0) return;
  kill();
  waitpid(pid_, nullptr, 0);
}

Status ChildProcess::send(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(in_.get(), text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(errno, fmt::format("cannot write to {}", name_));
    text.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

void ChildProcess::kill() {
  if (!reaped_) ::kill(pid_, SIGKILL);
}

bool ChildProcess::reap(std::string* how) {
  int status = 0;
  pid_t r;
  do r = waitpid(pid_, &status, 0);
  while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (r < 0) {
    *how = fmt::format("could not be waited for ({})", std::strerror(errno));
    return false;
  }
  if (WIFSIGNALED(status)) {
    *how = fmt::format("was killed by signal {} (SIG{})", WTERMSIG(status), sigabbrev_np(WTERMSIG(status)));
    return false;
  }
  *how = fmt::format("exited with status {}", WEXITSTATUS(status));
  return WEXITSTATUS(status) == 0;
}

}  // namespace hvvss::hold
