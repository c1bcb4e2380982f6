#include "plugins/fsfreeze/targets.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace hvvss::fsfreeze {

namespace fs = std::filesystem;

namespace {

void collect_backing_files(const fs::path& dev_dir, std::vector<std::string>& out, int depth) {
  if (depth > 8) return;
  std::error_code ec;
  fs::path dir = fs::exists(dev_dir / "partition", ec) ? dev_dir.parent_path() : dev_dir;
  std::ifstream backing(dir / "loop" / "backing_file");
  std::string file;
  if (backing && std::getline(backing, file)) {
    if (file.ends_with(" (deleted)")) file.resize(file.size() - 10);
    out.push_back(file);
    return;
  }
  for (const auto& slave : fs::directory_iterator(dir / "slaves", ec))
    collect_backing_files(fs::canonical(slave.path(), ec), out, depth + 1);
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string normalized(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// The mount whose mount point is the longest prefix of `path` (the filesystem holding it).
const MountEntry* containing_mount(const std::vector<MountEntry>& mounts, const std::string& path) {
  const MountEntry* best = nullptr;
  for (const auto& m : mounts) {
    const std::string& mp = m.mount_point;
    bool prefix =
        mp == "/" || path == mp || (path.starts_with(mp) && path.size() > mp.size() && path[mp.size()] == '/');
    if (prefix && (!best || mp.size() >= best->mount_point.size())) best = &m;
  }
  return best;
}

// Stacking order: repeatedly take, in reverse mount order with `/` last, the first target all
// of whose inner (loop-backed) filesystems are already placed. A target's wave is one more than
// its innermost dependency's; `/` has a wave of its own, the last.
std::vector<Target> order_targets(std::vector<Target> targets, const std::vector<MountEntry>& mounts,
                                  const LoopBackingFiles& backing) {
  std::map<std::string, std::set<std::string>> inner_of;  // outer dev -> devs that must go first
  for (const auto& t : targets) {
    for (const auto& file : backing(t.mount.major, t.mount.minor)) {
      const MountEntry* holder = containing_mount(mounts, file);
      if (holder && holder->dev() != t.mount.dev()) inner_of[holder->dev()].insert(t.mount.dev());
    }
  }
  std::stable_sort(targets.begin(), targets.end(), [](const Target& a, const Target& b) {
    return a.mount.mount_point != "/" && b.mount.mount_point == "/";
  });
  std::vector<Target> ordered;
  std::map<std::string, int> placed;  // dev -> wave
  std::set<std::string> target_devs;
  for (const auto& t : targets) target_devs.insert(t.mount.dev());
  int last_wave = -1;
  while (!targets.empty()) {
    auto ready = std::find_if(targets.begin(), targets.end(), [&](const Target& t) {
      for (const auto& dev : inner_of[t.mount.dev()])
        if (target_devs.count(dev) && !placed.count(dev)) return false;
      return true;
    });
    if (ready == targets.end()) ready = targets.begin();  // a cycle cannot happen; never loop forever
    ready->wave = 0;
    for (const auto& dev : inner_of[ready->mount.dev()])
      if (placed.count(dev)) ready->wave = std::max(ready->wave, placed[dev] + 1);
    if (ready->mount.mount_point == "/") ready->wave = last_wave + 1;
    last_wave = std::max(last_wave, ready->wave);
    placed[ready->mount.dev()] = ready->wave;
    ordered.push_back(std::move(*ready));
    targets.erase(ready);
  }
  std::stable_sort(ordered.begin(), ordered.end(), [](const Target& a, const Target& b) { return a.wave < b.wave; });
  return ordered;
}

}  // namespace

std::vector<std::string> sysfs_loop_backing_files(unsigned major, unsigned minor) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::path dev_dir = fs::canonical(fmt::format("/sys/dev/block/{}:{}", major, minor), ec);
  if (!ec) collect_backing_files(dev_dir, files, 0);
  return files;
}

Plan plan_targets(const std::vector<MountEntry>& mounts, const Filters& filters, const LoopBackingFiles& backing) {
  Plan plan;
  std::vector<std::string> only;
  for (const auto& p : filters.only_mounts) only.push_back(normalized(p));
  std::set<std::string> matched_only;

  // Group mounts by superblock, in mount order; a mount hidden by a later mount at the same
  // path cannot be reached through its mount point.
  std::vector<std::string> dev_order;
  std::map<std::string, std::vector<const MountEntry*>> by_dev;
  for (size_t i = 0; i < mounts.size(); ++i) {
    const MountEntry& m = mounts[i];
    bool shadowed = std::any_of(mounts.begin() + static_cast<long>(i) + 1, mounts.end(),
                                [&](const MountEntry& later) { return later.mount_point == m.mount_point; });
    if (!by_dev.count(m.dev())) dev_order.push_back(m.dev());
    auto& group = by_dev[m.dev()];
    if (!shadowed) group.push_back(&m);
  }

  std::vector<Target> targets;
  for (auto it = dev_order.rbegin(); it != dev_order.rend(); ++it) {
    const auto& group = by_dev[*it];
    if (group.empty()) continue;
    const MountEntry* chosen = nullptr;
    if (!only.empty()) {
      for (const MountEntry* m : group)
        if (contains(only, m->mount_point)) {
          chosen = m;
          break;
        }
      if (!chosen) continue;  // outside the allow-list: never considered
      matched_only.insert(chosen->mount_point);
    } else {
      auto root = std::find_if(group.begin(), group.end(), [](const MountEntry* m) { return m->root == "/"; });
      chosen = root != group.end() ? *root : group.front();
    }
    const MountEntry& m = *chosen;
    if (m.read_only_super()) {
      plan.skipped.push_back({m.mount_point, "read-only filesystem"});
      continue;
    }
    if (only.empty() && !contains(filters.freezable_types, m.fstype)) {
      if (m.source.starts_with("/dev/"))
        plan.skipped.push_back({m.mount_point, fmt::format("{} is not a freezable type", m.fstype)});
      continue;
    }
    auto glob = std::find_if(filters.exclude_globs.begin(), filters.exclude_globs.end(),
                             [&](const std::string& g) { return fnmatch(g.c_str(), m.mount_point.c_str(), 0) == 0; });
    if (glob != filters.exclude_globs.end()) {
      plan.skipped.push_back({m.mount_point, fmt::format("excluded by ExcludeMounts={}", *glob)});
      continue;
    }
    targets.push_back({m});
  }
  for (const auto& p : only)
    if (!matched_only.count(p))
      plan.errors.push_back(fmt::format("OnlyMounts= names {}, which is not a visible mount point", p));
  plan.targets = order_targets(std::move(targets), mounts, backing);
  return plan;
}

}  // namespace hvvss::fsfreeze
