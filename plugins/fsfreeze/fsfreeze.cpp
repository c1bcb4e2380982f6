#include "plugins/fsfreeze/fsfreeze.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
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

// Runs job(0..n-1), on n threads once there are enough jobs to pay for starting them.
template <typename Job>
void for_each_parallel(size_t n, const Job& job) {
  constexpr size_t kMinParallel = 4;
  if (n < kMinParallel) {
    for (size_t i = 0; i < n; ++i) job(i);
    return;
  }
  std::vector<std::jthread> threads;
  threads.reserve(n - 1);
  for (size_t i = 1; i < n; ++i) threads.emplace_back([&job, i] { job(i); });
  job(0);
}

// Dirty and under-writeback page cache of the whole system, in KiB (0 if unknown).
long dirty_kib() {
  UniqueFd fd(open("/proc/meminfo", O_RDONLY | O_CLOEXEC));
  char buf[4096];
  ssize_t n = fd ? read(fd.get(), buf, sizeof buf - 1) : -1;
  if (n <= 0) return 0;
  buf[n] = '\0';
  long total = 0;
  for (const char* key : {"\nDirty:", "\nWriteback:"})
    if (const char* at = std::strstr(buf, key)) total += std::strtol(at + std::strlen(key), nullptr, 10);
  return total;
}

std::string skipped_text(const Plan& plan) {
  std::vector<std::string> items;
  for (const auto& s : plan.skipped) items.push_back(fmt::format("{} ({})", s.mount_point, s.reason));
  return items.empty() ? "" : "; skipped " + join(items);
}

}  // namespace

FsFreeze::FsFreeze(Settings settings, IntentRecord intent, LoopBackingFiles backing)
    : settings_(std::move(settings)), intent_(std::move(intent)), backing_(std::move(backing)) {}

// The mount table is read every time; planning (sysfs walks included) is redone only when the
// table changed since the last call, typically HOT_BACKUP just before FREEZE.
Status FsFreeze::plan(Plan* plan) {
  std::string text;
  if (Status s = read_proc_file(settings_.mountinfo_path, &text); !s) return s;
  if (text != cached_mountinfo_) {
    std::vector<MountEntry> mounts;
    if (Status s = parse_mountinfo(text, &mounts); !s) return s.prefixed(settings_.mountinfo_path);
    cached_plan_ = plan_targets(mounts, settings_.filters, backing_);
    cached_mountinfo_ = std::move(text);
  }
  if (!cached_plan_.errors.empty()) return Status::error(join(cached_plan_.errors));
  *plan = cached_plan_;
  return {};
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
  Plan plan;
  std::vector<Held> held;
  Status s = this->plan(&plan);
  if (s) s = open_targets(plan, &held);
  if (!s) return Outcome::failure(s.message());
  std::vector<std::string> names;
  for (const auto& t : plan.targets) names.push_back(fmt::format("{} ({})", t.mount.mount_point, t.mount.fstype));
  return Outcome::success(
      fmt::format("would freeze {} filesystem(s): {}{}", names.size(), join(names), skipped_text(plan)));
}

Status FsFreeze::write_intent(const std::vector<Held>& held) const {
  std::vector<std::string> lines;
  lines.reserve(held.size());
  for (const auto& h : held) lines.push_back(h.dev + " " + escape_octal(h.mount_point));
  return intent_.write(lines).prefixed("intent record");
}

Outcome FsFreeze::freeze(Deadline deadline, const std::atomic<bool>& aborted) {
  if (!frozen_.empty()) return Outcome::success("already frozen");
  Plan plan;
  std::vector<Held> held;
  Status s = this->plan(&plan);
  if (s) s = open_targets(plan, &held);
  if (!s) return Outcome::failure(s.message());
  const std::string skipped = skipped_text(plan);
  if (held.empty()) return Outcome::success("no filesystem to freeze" + skipped);
  spdlog::debug("fsfreeze: freezing {} filesystem(s){}", held.size(), skipped);

  int passes = 0;
  if (s = write_intent(held); !s) return Outcome::failure(s.message());
  if (s = presync(held, deadline, &passes); !s) {
    intent_.clear();
    return Outcome::failure(s.message());
  }

  // The reply's text is ready before the first FIFREEZE, so that nothing but the reply follows
  // the last one.
  std::vector<std::string> names;
  names.reserve(held.size());
  for (const auto& h : held) names.push_back(h.mount_point);
  std::string flushed = passes > 0 ? fmt::format("; flushed first ({} syncfs pass(es))", passes) : "";
  std::string detail = fmt::format("froze {} filesystem(s): {}{}{}", names.size(), join(names), skipped, flushed);

  // Wave by wave; the filesystems of one wave are independent and freeze in parallel.
  std::string error;
  std::vector<int> errors(held.size(), 0);
  std::vector<std::string> foreign;
  for (size_t begin = 0, end = 0; begin < held.size() && error.empty(); begin = end) {
    while (end < held.size() && held[end].wave == held[begin].wave) ++end;
    if (deadline.expired()) {
      error = fmt::format("deadline reached before freezing {}", held[begin].mount_point);
      break;
    }
    // The engine's abort is honoured before each FIFREEZE (one that already runs cannot be
    // interrupted).
    for_each_parallel(end - begin, [&](size_t i) {
      if (aborted)
        errors[begin + i] = ECANCELED;
      else
        errors[begin + i] = ioctl(held[begin + i].fd.get(), FIFREEZE, 0) == 0 ? 0 : errno;
    });
    for (size_t i = begin; i < end; ++i) {
      if (errors[i] == 0)
        frozen_.push_back(std::move(held[i]));
      else if (errors[i] == EBUSY)
        foreign.push_back(held[i].mount_point);
      else if (error.empty())
        error = errors[i] == ECANCELED ? fmt::format("aborted before freezing {}", held[i].mount_point)
                                       : fmt::format("FIFREEZE {}: {}", held[i].mount_point, errno_text(errors[i]));
    }
  }
  if (!error.empty()) {
    bool ok = true;
    std::string undone = thaw_held(frozen_, ok);
    return Outcome::failure(error + (ok ? ", rolled back" : ", rollback incomplete: " + undone));
  }
  if (!foreign.empty()) {
    // Not ours to thaw: drop them from the intent record too.
    Status rewritten = write_intent(frozen_);
    detail = fmt::format("froze {} filesystem(s); already frozen by someone else, left alone: {}{}{}{}", frozen_.size(),
                         join(foreign), skipped, flushed, rewritten ? "" : "; " + rewritten.message());
  }
  return Outcome::success(std::move(detail));
}

// Flushes dirty data while applications still write, so that the freeze itself only commits
// journals. Skipped when the system has little dirty data (the freeze's own sync is then as
// quick), repeated while much is still dirty, as writers keep adding during a pass.
Status FsFreeze::presync(const std::vector<Held>& held, Deadline deadline, int* passes) {
  constexpr long kWorthIt = 4096;  // KiB
  constexpr int kMaxPasses = 3;
  std::vector<int> errors(held.size(), 0);
  for (*passes = 0; *passes < kMaxPasses && !deadline.expired() && dirty_kib() >= kWorthIt; ++*passes) {
    for_each_parallel(held.size(), [&](size_t i) { errors[i] = syncfs(held[i].fd.get()) == 0 ? 0 : errno; });
    for (size_t i = 0; i < held.size(); ++i)
      if (errors[i] != 0) return Status::from_errno(errors[i], fmt::format("syncfs {}", held[i].mount_point));
  }
  return {};
}

// FITHAW in reverse freeze order, always trying every filesystem. Clears the intent record
// once nothing of ours is left frozen.
std::string FsFreeze::thaw_held(std::vector<Held>& held, bool& ok) {
  std::vector<std::string> problems, thawed;
  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    if (ioctl(it->fd.get(), FITHAW, 0) == 0)
      thawed.push_back(it->mount_point);
    else if (errno == EINVAL)
      problems.push_back(fmt::format("{} was already thawed by someone else", it->mount_point));
    else {
      ok = false;
      problems.push_back(fmt::format("FITHAW {}: {}", it->mount_point, errno_text(errno)));
    }
  }
  held.clear();
  if (ok) intent_.clear();
  std::string detail = fmt::format("thawed {} filesystem(s)", thawed.size());
  if (!thawed.empty()) detail += ": " + join(thawed);
  if (!problems.empty()) detail += "; " + join(problems);
  return detail;
}

Outcome FsFreeze::thaw(Deadline) {
  if (frozen_.empty()) return Outcome::success();
  bool ok = true;
  std::string detail = thaw_held(frozen_, ok);
  return ok ? Outcome::success(detail) : Outcome::failure(detail);
}

Outcome FsFreeze::recover() {
  std::vector<std::string> lines;
  if (Status s = intent_.read(&lines); !s) return Outcome::failure(s.message());
  if (lines.empty()) return Outcome::success();
  std::vector<MountEntry> mounts;
  if (Status s = read_mountinfo(settings_.mountinfo_path, &mounts); !s) return Outcome::failure(s.message());
  std::vector<Held> held;
  std::vector<std::string> notes;
  bool ok = true;
  for (const auto& line : lines) {
    auto space = line.find(' ');
    std::string dev = line.substr(0, space);
    std::string path = space == std::string::npos ? "" : unescape_octal(line.substr(space + 1));
    // Prefer the recorded mount point; any other mount of the same superblock will do.
    const MountEntry* found = nullptr;
    for (const auto& m : mounts)
      if (m.dev() == dev && (!found || m.mount_point == path)) found = &m;
    if (!found) {
      notes.push_back(fmt::format("{} ({}) is no longer mounted", path, dev));
      continue;
    }
    UniqueFd fd;
    if (Status s = open_mount(*found, &fd); !s) {
      ok = false;
      notes.push_back(s.message());
      continue;
    }
    held.push_back({std::move(fd), found->mount_point, dev});
  }
  // The record is in freeze order; thaw_held walks it backwards and clears it if all went well.
  std::string detail = thaw_held(held, ok);
  if (!notes.empty()) detail += "; " + join(notes);
  return ok ? Outcome::success(detail) : Outcome::failure(detail);
}

}  // namespace hvvss::fsfreeze
