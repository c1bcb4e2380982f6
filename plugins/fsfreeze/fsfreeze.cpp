#include "plugins/fsfreeze/fsfreeze.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <system_error>
#include <thread>

namespace hvvss::fsfreeze {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Opens a mount point and proves the descriptor reaches that very mount (not one stacked on
// top of it, or a different filesystem after a remount).
Status open_mount(const MountEntry& mount, UniqueFd* out) {
  UniqueFd fd(open(mount.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Status::from_errno(errno, fmt::format("cannot open {}", mount.mount_point));
  struct statx stx {};
  if (statx(fd.get(), "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) == 0 && (stx.stx_mask & STATX_MNT_ID) &&
      stx.stx_mnt_id != static_cast<uint64_t>(mount.mount_id))
    return Status::errorf("{} is covered by another mount", mount.mount_point);
  *out = std::move(fd);
  return {};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// Runs job(0..n-1), on n threads once there are enough jobs to pay for starting them. A thread
// that cannot be started (the pids cgroup or TasksMax= is full) leaves its job, and the ones after
// it, to this thread.
template <typename Job>
void for_each_parallel(size_t n, const Job& job) {
  constexpr size_t kMinParallel = 4;
  std::vector<std::jthread> threads;
  size_t started = 1;  // jobs [1, started) run on threads of their own
  if (n >= kMinParallel) {
    threads.reserve(n - 1);
    try {
      for (; started < n; ++started) threads.emplace_back([&job, i = started] { job(i); });
    } catch (const std::system_error& e) {
      spdlog::warn("fsfreeze: cannot start a thread ({}): going on in sequence", e.what());
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (i == 0 || i >= started) job(i);
}

// The presync may take half the time left before the freeze's deadline; the other half is the
// freeze's, which flushes whatever the presync did not.
Deadline presync_limit(Deadline deadline) { return Deadline(Clock::now() + deadline.remaining() / 2); }

std::string skipped_text(const Plan& plan) {
  std::vector<std::string> items;
  for (const auto& s : plan.skipped) items.push_back(fmt::format("{} ({})", s.mount_point, s.reason));
  return items.empty() ? "" : "; skipped " + join(items);
}

}  // namespace

FsFreeze::FsFreeze(Settings settings, IntentRecord intent, LoopBackingFiles backing)
    : settings_(std::move(settings)), intent_(std::move(intent)), backing_(std::move(backing)) {}

FsFreeze::~FsFreeze() { join_rescue(); }

void FsFreeze::join_rescue() {
  if (rescue_.joinable()) rescue_.join();
}

// The mount table is read every time; planning (sysfs walks included) is redone only when the
// table changed since the last call, typically HOT_BACKUP just before FREEZE.
Status FsFreeze::plan(Plan* plan) {
  std::string text;
  if (Status s = read_proc_file(settings_.mountinfo_path, &text); !s) return s;
  if (text != cached_mountinfo_) {
    std::vector<MountEntry> mounts;
    if (Status s = parse_mountinfo(text, &mounts); !s) return s.prefixed(settings_.mountinfo_path);
    cached_plan_ = plan_targets(mounts, settings_.filters, backing_);
    cached_mounts_ = std::move(mounts);
    cached_mountinfo_ = std::move(text);
  }
  *plan = cached_plan_;
  if (Status s = check_runtime_dir(cached_plan_, cached_mounts_); !s) return s;
  if (!cached_plan_.errors.empty()) return Status::error(join(cached_plan_.errors));
  return {};
}

// The mount holding the runtime directory is found by its mount id (statx), which, unlike
// st_dev, names the superblock's device on btrfs too.
Status FsFreeze::check_runtime_dir(const Plan& plan, const std::vector<MountEntry>& mounts) const {
  std::filesystem::path runtime_dir = intent_.dir().parent_path();
  // Where it is, or will be created: its nearest existing ancestor.
  std::filesystem::path at = runtime_dir;
  struct statx stx {};
  while (statx(AT_FDCWD, at.c_str(), 0, STATX_MNT_ID, &stx) != 0 && errno == ENOENT && at.has_relative_path())
    at = at.parent_path();
  if (!(stx.stx_mask & STATX_MNT_ID)) return {};  // a kernel older than 5.8: nothing to compare
  auto holder = std::find_if(mounts.begin(), mounts.end(),
                             [&](const MountEntry& m) { return static_cast<uint64_t>(m.mount_id) == stx.stx_mnt_id; });
  if (holder == mounts.end()) return {};
  for (const auto& t : plan.targets)
    if (t.mount.dev() == holder->dev())
      return Status::errorf(
          "the runtime directory {} is on {}, a filesystem this agent freezes: the intent record could not be "
          "written while it is frozen; set RuntimeDirectory= (--runtime-dir) to a directory on tmpfs such as /run",
          runtime_dir.string(), t.mount.mount_point);
  return {};
}

Status FsFreeze::validate() {
  Plan plan;
  // Only the runtime directory's place is fatal at start-up: an allow-listed mount may appear later.
  if (Status s = this->plan(&plan); !s && cached_mountinfo_.empty()) return s;
  return check_runtime_dir(cached_plan_, cached_mounts_);
}

Status FsFreeze::open_targets(const Plan& plan, std::vector<Held>* held) {
  held->clear();
  for (const auto& target : plan.targets) {
    UniqueFd fd;
    if (Status s = open_mount(target.mount, &fd); !s) return s;
    held->push_back({std::move(fd), target.mount.mount_point, target.mount.dev(), target.wave});
  }
  return {};
}

Outcome FsFreeze::check(Deadline) {
  join_rescue();
  Plan plan;
  std::vector<Held> held;
  Status s = this->plan(&plan);
  if (s) s = open_targets(plan, &held);
  if (!s) return Outcome::failure(s.message());
  std::vector<std::string> names;
  names.reserve(plan.targets.size());
  for (const auto& t : plan.targets) names.push_back(fmt::format("{} ({})", t.mount.mount_point, t.mount.fstype));
  return Outcome::success(
      fmt::format("would freeze {} filesystem(s): {}{}", names.size(), join(names), skipped_text(plan)));
}

std::vector<PresyncTarget> FsFreeze::presync_targets(const std::vector<Held>& held) {
  std::vector<PresyncTarget> targets;
  targets.reserve(held.size());
  for (const auto& h : held) targets.push_back({h.fd.get(), h.mount_point});
  return targets;
}

// One entry per target, all before the first FIFREEZE; if one cannot be written, nothing is frozen.
Status FsFreeze::record_intent(const std::vector<Held>& held) const {
  for (size_t i = 0; i < held.size(); ++i) {
    if (Status s = intent_.add({held[i].dev, held[i].mount_point}); !s) {
      for (size_t j = 0; j < i; ++j) intent_.remove(held[j].dev);
      return s.prefixed("intent record (nothing was frozen)");
    }
  }
  return {};
}

// FIFREEZE of one target on the thread that runs it. Once frozen it is published as ours (moved
// into frozen_), unless the freeze was aborted meanwhile: then it is thawed here and now, and
// stays ours only if that FITHAW fails.
void FsFreeze::freeze_one(Held& held, int* error) {
  {
    std::lock_guard lock(mutex_);
    if (aborted_) {
      *error = ECANCELED;
      return;
    }
  }
  *error = ioctl(held.fd.get(), FIFREEZE, 0) == 0 ? 0 : errno;
  if (*error != 0) return;
  std::lock_guard lock(mutex_);
  if (!aborted_) {
    frozen_.push_back(std::move(held));
    return;
  }
  *error = ECANCELED;
  if (ioctl(held.fd.get(), FITHAW, 0) == 0) {
    rescued_ += fmt::format("; {} thawed when its FIFREEZE returned", held.mount_point);
  } else {
    rescued_ += fmt::format("; FITHAW {}: {} (still frozen; retried later)", held.mount_point, errno_text(errno));
    frozen_.push_back(std::move(held));
  }
}

Outcome FsFreeze::freeze(Deadline deadline) {
  join_rescue();
  {
    std::lock_guard lock(mutex_);
    if (!frozen_.empty()) return Outcome::failure("filesystems this agent froze earlier are not thawed yet");
    freezing_ = true;
    aborted_ = false;
    rescued_.clear();
  }
  Outcome outcome = [&] {
    Plan plan;
    std::vector<Held> held;
    Status s = this->plan(&plan);
    if (s) s = open_targets(plan, &held);
    if (!s) return Outcome::failure(s.message());
    const std::string skipped = skipped_text(plan);
    if (held.empty()) return Outcome::success("no filesystem to freeze" + skipped);
    spdlog::debug("fsfreeze: freezing {} filesystem(s){}", held.size(), skipped);

    if (s = record_intent(held); !s) return Outcome::failure(s.message());
    PresyncReport presynced;
    if (s = presync(presync_targets(held), presync_limit(deadline), &presynced); !s) {
      for (const auto& h : held) intent_.remove(h.dev);
      return Outcome::failure(s.message());
    }
    if (presynced.ran() || presynced.timed_out) spdlog::info("fsfreeze: flushed first: {}", presynced.summary());
    // The reply's text is ready before the first FIFREEZE, so that nothing but the reply follows
    // the last one.
    std::vector<std::string> names;
    names.reserve(held.size());
    for (const auto& h : held) names.push_back(h.mount_point);
    std::string flushed = presynced.ran() ? fmt::format("; flushed first ({})", presynced.summary()) : "";
    std::string detail = fmt::format("froze {} filesystem(s): {}{}{}", names.size(), join(names), skipped, flushed);

    {
      std::lock_guard lock(mutex_);
      frozen_.reserve(held.size());  // no allocation once the first filesystem is frozen
    }
    // Wave by wave; the filesystems of one wave are independent and freeze in parallel.
    std::string error;
    std::vector<int> errors(held.size(), 0);
    std::vector<std::string> foreign;
    for (size_t begin = 0, end = 0; begin < held.size() && error.empty() && foreign.empty(); begin = end) {
      while (end < held.size() && held[end].wave == held[begin].wave) ++end;
      if (deadline.expired()) {
        error = fmt::format("deadline reached before freezing {}", held[begin].mount_point);
        break;
      }
      for_each_parallel(end - begin, [&](size_t i) { freeze_one(held[begin + i], &errors[begin + i]); });
      for (size_t i = begin; i < end; ++i) {
        if (errors[i] == EBUSY) {
          intent_.remove(held[i].dev);  // not ours: never thawed by us, not even after a crash
          foreign.push_back(held[i].mount_point);
        } else if (errors[i] != 0 && error.empty()) {
          error = errors[i] == ECANCELED ? fmt::format("aborted before {} was frozen", held[i].mount_point)
                                         : fmt::format("FIFREEZE {}: {}", held[i].mount_point, errno_text(errors[i]));
        }
      }
      for (size_t i = begin; i < end; ++i)
        if (errors[i] != 0 && errors[i] != EBUSY && held[i].fd) intent_.remove(held[i].dev);
    }
    if (!foreign.empty() && error.empty())
      // Someone else's freeze (fsfreeze -f, another backup agent) may be lifted at any moment:
      // the snapshot's consistency would not be ours to promise.
      error = fmt::format("already frozen by someone else, left alone: {}", join(foreign));
    if (error.empty()) return Outcome::success(std::move(detail));
    for (size_t i = 0; i < held.size(); ++i)
      if (errors[i] == 0 && held[i].fd) intent_.remove(held[i].dev);  // a wave never reached
    std::string undone = thaw_ours();
    return Outcome::failure(error + "; rolled back: " + undone);
  }();
  join_rescue();
  std::lock_guard lock(mutex_);
  freezing_ = false;
  if (aborted_ && !rescued_.empty()) outcome.detail += "; aborted: " + rescued_;
  outcome.holds = !outcome.ok() && !frozen_.empty();
  return outcome;
}

void FsFreeze::abort() {
  std::lock_guard lock(mutex_);
  if (!freezing_ || aborted_) return;
  aborted_ = true;
  if (frozen_.empty()) return;
  auto taken = std::make_shared<std::vector<Held>>(std::move(frozen_));
  frozen_.clear();
  try {
    rescue_ = std::thread([this, taken] {
      std::vector<Held> kept;
      std::string thawed = thaw_held(*taken, &kept);
      std::lock_guard lock(mutex_);
      rescued_ = "already frozen ones " + thawed + rescued_;
      for (auto& k : kept) frozen_.push_back(std::move(k));
    });
  } catch (const std::system_error& e) {
    // No thread to be had: the freeze thaws them itself once its FIFREEZE returns.
    spdlog::error("fsfreeze: cannot start a thread to thaw at once ({}): they are thawed when the freeze returns",
                  e.what());
    frozen_ = std::move(*taken);
  }
}

std::string FsFreeze::thaw_held(std::vector<Held>& held, std::vector<Held>* kept) const {
  // The last wave first, whatever order `held` is in (what holds a loop device's backing file
  // thaws before the filesystem on it, whose FITHAW writes to that file); the filesystems of one
  // wave are independent and thaw in parallel, as they froze.
  std::vector<size_t> order(held.size());
  std::iota(order.rbegin(), order.rend(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return held[a].wave > held[b].wave; });
  std::vector<int> errors(held.size(), 0);
  for (size_t begin = 0, end = 0; begin < order.size(); begin = end) {
    while (end < order.size() && held[order[end]].wave == held[order[begin]].wave) ++end;
    for_each_parallel(end - begin, [&](size_t i) {
      errors[order[begin + i]] = ioctl(held[order[begin + i]].fd.get(), FITHAW, 0) == 0 ? 0 : errno;
    });
  }
  std::vector<std::string> problems, thawed;
  for (size_t i : order) {
    if (errors[i] == 0) {
      thawed.push_back(held[i].mount_point);
    } else if (errors[i] == EINVAL) {
      problems.push_back(fmt::format("{} was already thawed by someone else", held[i].mount_point));
    } else {
      problems.push_back(
          fmt::format("FITHAW {}: {} (still frozen; retried later)", held[i].mount_point, errno_text(errors[i])));
      continue;
    }
    intent_.remove(held[i].dev);
  }
  for (size_t i = 0; i < held.size(); ++i)
    if (errors[i] != 0 && errors[i] != EINVAL) kept->push_back(std::move(held[i]));
  held.clear();
  std::string detail = fmt::format("thawed {} filesystem(s)", thawed.size());
  if (!thawed.empty()) detail += ": " + join(thawed);
  if (!problems.empty()) detail += "; " + join(problems);
  return detail;
}

// Thaws everything of ours; what cannot be thawed stays ours.
std::string FsFreeze::thaw_ours() {
  std::vector<Held> mine, kept;
  {
    std::lock_guard lock(mutex_);
    mine = std::move(frozen_);
    frozen_.clear();
  }
  std::string detail = thaw_held(mine, &kept);
  std::lock_guard lock(mutex_);
  for (auto& k : kept) frozen_.push_back(std::move(k));
  return detail;
}

Outcome FsFreeze::thaw(Deadline) {
  join_rescue();
  {
    std::lock_guard lock(mutex_);
    if (frozen_.empty()) return Outcome::success();
  }
  std::string detail = thaw_ours();
  std::lock_guard lock(mutex_);
  return frozen_.empty() ? Outcome::success(detail) : Outcome::failure(detail);
}

Outcome FsFreeze::recover() {
  std::vector<IntentRecord::Entry> entries;
  if (Status s = intent_.read(&entries); !s) return Outcome::failure(s.message());
  if (entries.empty()) return Outcome::success();
  // Only what the current configuration would freeze is thawed: a record naming anything else
  // (a filesystem outside OnlyMounts=, `/` reached through a forged or stale entry) is left alone.
  Plan plan;
  if (Status s = this->plan(&plan); !s && plan.targets.empty()) return Outcome::failure(s.message());
  std::vector<Held> held;
  std::vector<std::string> notes;
  bool ok = true;
  for (const auto& target : plan.targets) {
    auto entry = std::find_if(entries.begin(), entries.end(),
                              [&](const IntentRecord::Entry& e) { return e.dev == target.mount.dev(); });
    if (entry == entries.end()) continue;
    entries.erase(entry);
    UniqueFd fd;
    if (Status s = open_mount(target.mount, &fd); !s) {
      ok = false;
      notes.push_back(s.message());
      continue;
    }
    held.push_back({std::move(fd), target.mount.mount_point, target.mount.dev(), target.wave});
  }
  for (const auto& e : entries) {
    notes.push_back(
        fmt::format("{} ({}) is not a filesystem this agent freezes now: left alone", e.mount_point, e.dev));
    intent_.remove(e.dev);
  }
  // Planned order is freeze order; thaw_held walks it backwards. What cannot be thawed is ours
  // from now on, and the engine retries it.
  std::vector<Held> kept;
  std::string detail = thaw_held(held, &kept);
  if (!notes.empty()) detail += "; " + join(notes);
  Outcome outcome = ok && kept.empty() ? Outcome::success(detail) : Outcome::failure(detail);
  outcome.holds = !kept.empty();
  std::lock_guard lock(mutex_);
  for (auto& k : kept) frozen_.push_back(std::move(k));
  return outcome;
}

}  // namespace hvvss::fsfreeze
