// The filesystem participant: FIFREEZE/FITHAW on the targets chosen by plan_targets().
// Every target directory is opened before anything is frozen, dirty data is flushed first while
// writers still run (presync.h), and the freeze and the thaw go through those descriptors. Only
// what this participant froze is ever thawed: the intent record names it, one entry per
// filesystem, written before its FIFREEZE. A filesystem stays ours until a FITHAW succeeds (or
// says it is not frozen). Its calls block in syscalls, so the daemon runs it through
// BlockingParticipant; abort() thaws what is already frozen on a rescue thread, so a FIFREEZE
// stuck on one filesystem never holds the others.
#pragma once

#include "agent/blocking.h"
#include "agent/intent.h"
#include "agent/unique_fd.h"
#include "plugins/fsfreeze/presync.h"
#include "plugins/fsfreeze/targets.h"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hvvss::fsfreeze {

struct Settings {
  Filters filters;
  std::string mountinfo_path = "/proc/self/mountinfo";
};

class FsFreeze final : public SyncParticipant {
 public:
  FsFreeze(Settings settings, IntentRecord intent, LoopBackingFiles backing = sysfs_loop_backing_files);
  ~FsFreeze() override;
  FsFreeze(const FsFreeze&) = delete;
  FsFreeze& operator=(const FsFreeze&) = delete;

  std::string_view name() const override { return "fsfreeze"; }
  Outcome check(Deadline deadline) override;
  Outcome freeze(Deadline deadline) override;
  Outcome thaw(Deadline deadline) override;
  // Thaws what a predecessor's intent record names (it died with them frozen), but only where
  // the entry is still a filesystem this participant would freeze now.
  Outcome recover() override;
  void abort() override;

  // At start-up: the runtime directory must not be on a filesystem this participant freezes
  // (the intent record is written while others are frozen).
  Status validate();

 private:
  struct Held {
    UniqueFd fd;
    std::string mount_point;
    std::string dev;
    int wave = 0;
  };
  Status plan(Plan* plan);
  Status check_runtime_dir(const Plan& plan, const std::vector<MountEntry>& mounts) const;
  static Status open_targets(const Plan& plan, std::vector<Held>* held);
  Status record_intent(const std::vector<Held>& held) const;
  static std::vector<PresyncTarget> presync_targets(const std::vector<Held>& held);
  void freeze_one(Held& held, int* error);
  // FITHAW by wave, the last first, each wave in parallel; keeps what could not be thawed (in
  // `kept`), forgets the rest. Returns a sentence.
  std::string thaw_held(std::vector<Held>& held, std::vector<Held>* kept) const;
  std::string thaw_ours();
  void join_rescue();

  Settings settings_;
  IntentRecord intent_;
  LoopBackingFiles backing_;
  std::string cached_mountinfo_;
  std::vector<MountEntry> cached_mounts_;
  Plan cached_plan_;

  // Shared between the worker (freeze, thaw) and the rescue thread started by abort().
  std::mutex mutex_;
  std::vector<Held> frozen_;  // ours, in freeze order
  bool freezing_ = false;
  bool aborted_ = false;
  std::string rescued_;  // what the rescue thread did, for the freeze's outcome
  std::thread rescue_;
};

}  // namespace hvvss::fsfreeze
