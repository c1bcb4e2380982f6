// The presync: dirty data is written out with syncfs() before the first FIFREEZE, while
// applications still write, so that the freeze itself has little left to flush while their writes
// wait. One filesystem at a time: syncfs() on all targets at once fills every device queue
// together, and an application's small write that must wait for I/O (its page under writeback,
// its inode's block in a journal commit) then waits behind all of it, up to a second (measured in
// docs/PERFORMANCE.md). Skipped when the system has under 4 MiB dirty, repeated while much is
// still dirty (at most 3 passes), and no syncfs starts once `stop_by` has passed: one in progress
// cannot be interrupted, and what is left is flushed by the freeze itself.
#pragma once

#include "agent/participant.h"
#include "agent/status.h"

#include <functional>
#include <string>
#include <vector>

namespace hvvss::fsfreeze {

struct PresyncTarget {
  int fd;  // the target's directory, opened for the freeze
  std::string mount_point;
};

// The kernel's side, replaced by tests.
struct PresyncKernel {
  std::function<int(int fd)> syncfs;  // 0 or an errno
  std::function<long()> dirty_kib;    // Dirty + Writeback of the whole system (/proc/meminfo)
};
PresyncKernel real_kernel();

struct PresyncReport {
  int passes = 0;          // passes begun
  size_t synced = 0;       // syncfs() calls that returned
  size_t left = 0;         // targets of the last pass never synced: stop_by had passed
  bool timed_out = false;  // stop_by ended the presync (a pass or a target was left undone)
  long dirty_before_kib = 0;
  long dirty_after_kib = 0;
  Clock::duration took{};

  bool ran() const { return synced > 0; }
  // "1 pass(es), 4 syncfs one filesystem at a time, 1903 ms, dirty 2049 -> 3 MiB", and what the
  // time limit left undone.
  std::string summary() const;
};

Status presync(const std::vector<PresyncTarget>& targets, Deadline stop_by, PresyncReport* report,
               const PresyncKernel& kernel = real_kernel());

}  // namespace hvvss::fsfreeze
