// Decides which filesystems a snapshot freezes and in what order. One target per superblock
// (bind mounts and btrfs subvolumes share one), writable, of a freezable type or named in the
// allow-list, not excluded. A filesystem on a loop device is frozen before the filesystem that
// holds its backing file (and thawed after it); `/` is frozen last, in a wave of its own, unless
// it is on a loop device itself: the filesystems holding its backing file must follow it.
#pragma once

#include "plugins/fsfreeze/mountinfo.h"

#include <functional>
#include <string>
#include <vector>

namespace hvvss::fsfreeze {

struct Filters {
  std::vector<std::string> freezable_types = {"ext4", "ext3", "ext2", "xfs", "btrfs"};
  std::vector<std::string> exclude_globs;  // ExcludeMounts=, fnmatch on the mount point
  std::vector<std::string> only_mounts;    // OnlyMounts=: when set, nothing else is frozen
};

struct Target {
  MountEntry mount;  // the representative mount through which we freeze
  int wave = 0;      // targets of one wave do not depend on each other: they may freeze together
};

struct Skipped {
  std::string mount_point;
  std::string reason;
};

struct Plan {
  std::vector<Target> targets;   // freeze order, by ascending wave; thaw is the reverse
  std::vector<Skipped> skipped;  // writable mounts we leave alone, with the reason
  std::vector<std::string> errors;
};

// Returns the files backing the block device major:minor through loop devices, following
// partitions and device-mapper slaves (empty for a device that is not loop-backed).
using LoopBackingFiles = std::function<std::vector<std::string>(unsigned major, unsigned minor)>;
std::vector<std::string> sysfs_loop_backing_files(unsigned major, unsigned minor);

Plan plan_targets(const std::vector<MountEntry>& mounts, const Filters& filters, const LoopBackingFiles& backing);

}  // namespace hvvss::fsfreeze
