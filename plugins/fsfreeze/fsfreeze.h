// The filesystem participant: FIFREEZE/FITHAW on the targets chosen by plan_targets().
// Every target directory is opened before anything is frozen, dirty data is flushed with
// parallel syncfs() while writers still run, and the freeze and the thaw go through those
// descriptors. Only what this plugin froze is ever thawed; the intent record names it.
#pragma once

#include "agent/intent.h"
#include "agent/plugin.h"
#include "agent/unique_fd.h"
#include "plugins/fsfreeze/targets.h"

#include <optional>
#include <string>
#include <vector>

namespace hvvss::fsfreeze {

struct Settings {
  Filters filters;
  std::string mountinfo_path = "/proc/self/mountinfo";
};

class FsFreeze final : public Plugin {
 public:
  FsFreeze(Settings settings, IntentRecord intent, LoopBackingFiles backing = sysfs_loop_backing_files);

  std::string_view name() const override { return "fsfreeze"; }
  Outcome check(Deadline deadline) override;
  Outcome freeze(Deadline deadline) override;
  Outcome thaw(Deadline deadline) override;

  // Thaws what a predecessor's intent record names (it died with them frozen).
  Outcome recover();

 private:
  struct Held {
    UniqueFd fd;
    std::string mount_point;
    std::string dev;
    int wave = 0;
  };
  std::optional<Plan> plan(std::string& error);
  std::optional<std::vector<Held>> open_targets(const Plan& plan, std::string& error) const;
  std::string write_intent(const std::vector<Held>& held) const;
  static std::string presync(const std::vector<Held>& held, Deadline deadline);
  std::string thaw_held(std::vector<Held>& held, bool& ok);

  Settings settings_;
  IntentRecord intent_;
  LoopBackingFiles backing_;
  std::vector<Held> frozen_;  // in freeze order
  std::string cached_mountinfo_;
  Plan cached_plan_;
};

}  // namespace hvvss::fsfreeze
