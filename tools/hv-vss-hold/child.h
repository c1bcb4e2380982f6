// The database client as a child process: its stdin, stdout and stderr are pipes of ours, and a
// pidfd tells when it exits. The client starts with SIGTERM and SIGINT ignored, so that a stop
// signal sent to the whole unit (systemd's KillMode=control-group) or terminal reaches only
// hv-vss-hold, which unlocks first; the client is ended by closing its stdin, or by SIGKILL.
#pragma once

#include "agent/status.h"
#include "agent/unique_fd.h"

#include <sys/types.h>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::hold {

class ChildProcess {
 public:
  // Starts argv[0] (looked up in $PATH unless it has a slash) with `env` ("NAME=value") added to
  // the environment, replacing a variable of the same name.
  static Status spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      std::unique_ptr<ChildProcess>* out);
  ~ChildProcess();  // kills and reaps a child still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  int stdout_fd() const { return out_.get(); }
  int stderr_fd() const { return err_.get(); }
  int pidfd() const { return pidfd_.get(); }  // readable once the child has exited

  // Writes all of `text` to the child's stdin; fails if the child closed it (it exited).
  Status send(std::string_view text);
  void close_stdin() { in_.reset(); }
  void kill();  // SIGKILL
  // Collects the exit status of a child that has exited (pidfd readable); true if it exited 0.
  // `how` becomes "exited with status 1" or "was killed by signal 9".
  bool reap(std::string* how);
  bool reaped() const { return reaped_; }

 private:
  ChildProcess() = default;
  std::string name_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  UniqueFd in_, out_, err_, pidfd_;
};

}  // namespace hvvss::hold
