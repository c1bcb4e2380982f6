// The filesystem participant: FIFREEZE/FITHAW on the targets chosen by plan_targets().
// Every target directory is opened before anything is frozen, dirty data is flushed with
// parallel syncfs() while writers still run, and the freeze and the thaw go through those
// descriptors. Only what this plugin froze is ever thawed; the intent record names it. Its calls
// block in syscalls, so the daemon runs it through BlockingParticipant.
#pragma once

#include "agent/blocking.h"
#include "agent/intent.h"
#include "agent/unique_fd.h"
#include "plugins/fsfreeze/targets.h"

#include <string>
#include <vector>

namespace hvvss::fsfreeze {

struct Settings {
  Filters filters;
  std::string mountinfo_path = "/proc/self/mountinfo";
};

class FsFreeze final : public SyncParticipant {
 public:
  FsFreeze(Settings settings, IntentRecord intent, LoopBackingFiles backing = sysfs_loop_backing_files);

  std::string_view name() const override { return "fsfreeze"; }
  Outcome check(Deadline deadline) override;
  Outcome freeze(Deadline deadline, const std::atomic<bool>& aborted) override;
  Outcome thaw(Deadline deadline) override;
  // Thaws what a predecessor's intent record names (it died with them frozen).
  Outcome recover() override;

 private:
  struct Held {
    UniqueFd fd;
    std::string mount_point;
    std::string dev;
    int wave = 0;
  };
  Status plan(Plan* plan);
  static Status open_targets(const Plan& plan, std::vector<Held>* held);
  Status write_intent(const std::vector<Held>& held) const;
  // Returns how many syncfs passes ran.
  static Status presync(const std::vector<Held>& held, Deadline deadline, int* passes);
  std::string thaw_held(std::vector<Held>& held, bool& ok);

  Settings settings_;
  IntentRecord intent_;
  LoopBackingFiles backing_;
  std::vector<Held> frozen_;  // in freeze order
  std::string cached_mountinfo_;
  Plan cached_plan_;
};

}  // namespace hvvss::fsfreeze
