#include "plugins/fsfreeze/presync.h"

#include "agent/unique_fd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hvvss::fsfreeze {

namespace {

constexpr long kWorthItKib = 4096;  // below this, the freeze's own flush is as quick
constexpr int kMaxPasses = 3;

long meminfo_dirty_kib() {
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

long to_ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// One syncfs per target, in order, none started once stop_by has passed.
Status sync_pass(const std::vector<PresyncTarget>& targets, Deadline stop_by, const PresyncKernel& kernel,
                 PresyncReport* report) {
  for (size_t i = 0; i < targets.size(); ++i) {
    if (stop_by.expired()) {
      report->timed_out = true;
      report->left = targets.size() - i;
      return {};
    }
    const Clock::time_point began = Clock::now();
    if (int err = kernel.syncfs(targets[i].fd); err != 0)
      return Status::from_errno(err, fmt::format("syncfs {}", targets[i].mount_point));
    ++report->synced;
    spdlog::debug("fsfreeze: presync pass {}: syncfs {} took {} ms", report->passes, targets[i].mount_point,
                  to_ms(Clock::now() - began));
  }
  return {};
}

}  // namespace

PresyncKernel real_kernel() {
  return {[](int fd) { return syncfs(fd) == 0 ? 0 : errno; }, meminfo_dirty_kib};
}

std::string PresyncReport::summary() const {
  std::string text = fmt::format("{} pass(es), {} syncfs one filesystem at a time, {} ms, dirty {} -> {} MiB", passes,
                                 synced, to_ms(took), dirty_before_kib / 1024, dirty_after_kib / 1024);
  if (timed_out && left > 0)
    text += fmt::format("; stopped at its time limit, {} filesystem(s) left to the freeze's own flush", left);
  else if (timed_out)
    text += "; stopped at its time limit, what is still dirty left to the freeze's own flush";
  return text;
}

Status presync(const std::vector<PresyncTarget>& targets, Deadline stop_by, PresyncReport* report,
               const PresyncKernel& kernel) {
  *report = {};
  const Clock::time_point start = Clock::now();
  report->dirty_before_kib = kernel.dirty_kib();
  Status status;
  long dirty = report->dirty_before_kib;
  while (status && dirty >= kWorthItKib && report->passes < kMaxPasses) {
    if (stop_by.expired()) {
      report->timed_out = true;
      report->left = report->passes == 0 ? targets.size() : 0;
      break;
    }
    ++report->passes;
    status = sync_pass(targets, stop_by, kernel, report);
    if (report->timed_out) break;
    dirty = kernel.dirty_kib();
  }
  report->dirty_after_kib = kernel.dirty_kib();
  report->took = Clock::now() - start;
  return status;
}

}  // namespace hvvss::fsfreeze
