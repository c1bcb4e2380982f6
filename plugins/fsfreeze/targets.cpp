#include "plugins/fsfreeze/targets.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <linux/limits.h>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace hvvss::fsfreeze {

namespace fs = std::filesystem;

namespace {

// The first line of a sysfs attribute, without its newline; std::nullopt when it cannot be read.
// stdio rather than std::ifstream, whose locale machinery would stay resident in the daemon.
std::optional<std::string> first_line(const fs::path& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "re"), &std::fclose);
  std::array<char, PATH_MAX + 16> line{};  // a path and " (deleted)"
  if (!file || !std::fgets(line.data(), static_cast<int>(line.size()), file.get())) return std::nullopt;
  std::string text(line.data());
  if (text.ends_with('\n')) text.pop_back();
  return text;
}

void collect_backing_files(const fs::path& dev_dir, std::vector<std::string>& out, int depth) {
  if (depth > 8) return;
  std::error_code ec;
  fs::path dir = fs::exists(dev_dir / "partition", ec) ? dev_dir.parent_path() : dev_dir;
  if (auto file = first_line(dir / "loop" / "backing_file")) {
    if (file->ends_with(" (deleted)")) file->resize(file->size() - 10);
    out.push_back(*file);
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

// A superblock's identity ("major:minor") as one number, cheaper to hash than MountEntry::dev().
uint64_t dev_key(const MountEntry& m) { return (uint64_t{m.major} << 32) | m.minor; }

// The mount table indexed by mount point, so that the questions planning asks of every mount or
// file cost the length of a path instead of a walk through the table (which may hold 100,000
// bind mounts). Which mount a path reaches follows the mount tree, not the table's order: in a
// service's private namespace (ProtectSystem=, ProtectHome=) a filesystem mounted later under a
// read-only bind appears twice at one path, and the copy hidden under the bind may come last.
class MountIndex {
 public:
  explicit MountIndex(const std::vector<MountEntry>& mounts)
      : mounts_(mounts), earlier_at_(mounts.size(), kNone), reached_(mounts.size(), kUnknown) {
    last_at_.reserve(mounts.size());
    for (size_t i = 0; i < mounts.size(); ++i) {
      auto [last, added] = last_at_.try_emplace(mounts[i].mount_point, i);
      if (!added) earlier_at_[i] = std::exchange(last->second, i);
    }
  }

  // Whether mounts_[i] cannot be reached through its mount point: another mount is stacked on
  // it, or a mount covers the directory it was mounted on.
  bool shadowed(size_t i) const { return reached_at(mounts_[i].mount_point) != i; }

  // The filesystem holding `path`: the mount reached at the longest mount point that is a prefix
  // of it (at a '/'); `/` holds every path.
  const MountEntry* containing(std::string_view path) const {
    size_t i = holder(path);
    return i == kNone ? nullptr : &mounts_[i];
  }

 private:
  static constexpr size_t kNone = SIZE_MAX;
  static constexpr size_t kUnknown = SIZE_MAX - 1;

  size_t holder(std::string_view path) const {
    for (;;) {
      if (size_t i = reached_at(path); i != kNone) return i;
      size_t slash = path.rfind('/');
      if (path == "/" || slash == std::string_view::npos) return kNone;  // not under `/`: held by none
      path = slash == 0 ? std::string_view("/") : path.substr(0, slash);
    }
  }

  // The mount that `mount_point` reaches, or kNone: of the mounts there, the one mounted on the
  // mount holding the directory above, then the top of whatever is stacked on it. For `/`, or
  // where the table does not show what the mounts there sit on, the first is the last of them not
  // mounted on another one there. Two mounts on the same parent: the later one (the kernel tucks
  // a propagated mount under one that is already there).
  size_t reached_at(std::string_view mount_point) const {
    auto found = last_at_.find(mount_point);
    if (found == last_at_.end()) return kNone;
    const size_t last = found->second;
    if (reached_[last] != kUnknown) return reached_[last];
    auto latest = [&](auto&& match) {  // the last mount at this point that matches
      for (size_t i = last; i != kNone; i = earlier_at_[i])
        if (match(mounts_[i], i)) return i;
      return kNone;
    };
    auto mounted_on = [&](int parent_id) {
      return latest([&](const MountEntry& m, size_t) { return m.parent_id == parent_id && m.mount_id != parent_id; });
    };
    size_t below = kNone;
    if (size_t slash = mount_point.rfind('/'); mount_point != "/" && slash != std::string_view::npos)
      below = holder(slash == 0 ? std::string_view("/") : mount_point.substr(0, slash));
    size_t reached = below != kNone ? mounted_on(mounts_[below].mount_id) : latest([&](const MountEntry& m, size_t i) {
      return latest([&](const MountEntry& other, size_t j) { return j != i && other.mount_id == m.parent_id; }) ==
             kNone;
    });
    for (size_t i = last; reached != kNone && i != kNone; i = earlier_at_[i]) {  // no stack is taller
      size_t above = mounted_on(mounts_[reached].mount_id);
      if (above == kNone) break;
      reached = above;
    }
    reached_[last] = reached;
    return reached;
  }

  const std::vector<MountEntry>& mounts_;
  std::unordered_map<std::string_view, size_t> last_at_;  // mount point -> its last mount
  std::vector<size_t> earlier_at_;                        // the mount before it at the same point, or kNone
  mutable std::vector<size_t> reached_;                   // for a point's last mount: reached_at() of the point
};

using Edges = std::vector<std::vector<size_t>>;  // for each target, the indices of others

// For each target, the targets that must be frozen before it: the loop-backed filesystems whose
// backing files it holds.
Edges inner_targets(const std::vector<Target>& targets, const MountIndex& index, const LoopBackingFiles& backing) {
  std::unordered_map<uint64_t, size_t> position;  // dev -> index in `targets`
  for (size_t i = 0; i < targets.size(); ++i) position.emplace(dev_key(targets[i].mount), i);
  Edges inner(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const MountEntry& mount = targets[i].mount;
    for (const auto& file : backing(mount.major, mount.minor)) {
      const MountEntry* holder = index.containing(file);
      if (!holder || dev_key(*holder) == dev_key(mount)) continue;
      if (auto outer = position.find(dev_key(*holder)); outer != position.end()) inner[outer->second].push_back(i);
    }
  }
  for (auto& list : inner) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  return inner;
}

Edges reversed(const Edges& edges) {
  Edges reverse(edges.size());
  for (size_t i = 0; i < edges.size(); ++i)
    for (size_t j : edges[i]) reverse[j].push_back(i);
  return reverse;
}

// Makes `/` wait for every other target except those that must be frozen after it: the ones that
// hold its backing file when it is on a loop device, and so on outwards.
void root_waits_for_the_rest(size_t root, Edges& inner) {
  const Edges outer = reversed(inner);
  std::vector<bool> after_root(inner.size());
  std::vector<size_t> stack{root};
  while (!stack.empty()) {
    size_t at = stack.back();
    stack.pop_back();
    for (size_t next : outer[at])
      if (!after_root[next]) {
        after_root[next] = true;
        stack.push_back(next);
      }
  }
  std::vector<bool> before_root(inner.size());
  for (size_t i : inner[root]) before_root[i] = true;
  for (size_t i = 0; i < inner.size(); ++i)
    if (i != root && !after_root[i] && !before_root[i]) inner[root].push_back(i);
}

// The strongly connected components of a graph (Tarjan's, iteratively): each node's component.
// Nodes on a cycle share one; every other node has one of its own.
std::vector<size_t> components(const Edges& edges) {
  constexpr size_t kUnvisited = SIZE_MAX;
  const size_t count = edges.size();
  std::vector<size_t> index(count, kUnvisited), low(count), component(count), stack;
  std::vector<bool> on_stack(count);
  std::vector<std::pair<size_t, size_t>> calls;  // (node, next edge to follow)
  size_t visited = 0, found = 0;
  auto visit = [&](size_t node) {
    index[node] = low[node] = visited++;
    stack.push_back(node);
    on_stack[node] = true;
    calls.emplace_back(node, 0);
  };
  for (size_t start = 0; start < count; ++start) {
    if (index[start] != kUnvisited) continue;
    visit(start);
    while (!calls.empty()) {
      const size_t node = calls.back().first;
      if (calls.back().second < edges[node].size()) {
        const size_t next = edges[node][calls.back().second++];
        if (index[next] == kUnvisited)
          visit(next);
        else if (on_stack[next])
          low[node] = std::min(low[node], index[next]);
        continue;
      }
      calls.pop_back();
      if (!calls.empty()) low[calls.back().first] = std::min(low[calls.back().first], low[node]);
      if (low[node] != index[node]) continue;
      size_t member;
      do {
        member = stack.back();
        stack.pop_back();
        on_stack[member] = false;
        component[member] = found;
      } while (member != node);
      ++found;
    }
  }
  return component;
}

// Stacking order: repeatedly take, in reverse mount order with `/` last, the first target all
// of whose inner (loop-backed) filesystems are already placed. Backing files cannot form a cycle,
// but stale paths (of a deleted or moved image) may make one up: the edges inside a cycle are
// dropped, every other edge is kept. A target's wave is one more than its innermost dependency's.
// `/` goes after all the others, in a wave of its own; only the filesystems holding its backing
// file, when it is on a loop device, go after it. Ready targets wait in a heap by position:
// O(targets log targets + dependencies).
std::vector<Target> order_targets(std::vector<Target> targets, const MountIndex& index, const LoopBackingFiles& backing,
                                  std::optional<uint64_t> root_dev) {
  // The root filesystem, however it is reached (through `/` or a bind mount of it).
  auto is_root = [&](const Target& t) { return root_dev && dev_key(t.mount) == *root_dev; };
  std::stable_sort(targets.begin(), targets.end(),
                   [&](const Target& a, const Target& b) { return !is_root(a) && is_root(b); });
  const size_t count = targets.size();
  Edges inner = inner_targets(targets, index, backing);
  const size_t root = count > 0 && is_root(targets.back()) ? count - 1 : count;  // count: none
  if (root < count) root_waits_for_the_rest(root, inner);
  const std::vector<size_t> component = components(inner);
  Edges outer(count);                  // the kept edges, reversed
  std::vector<size_t> waiting(count);  // inner targets behind a kept edge, not yet placed
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < count; ++i) {
    for (size_t dependency : inner[i])
      if (component[dependency] != component[i]) {
        outer[dependency].push_back(i);
        ++waiting[i];
      }
    if (waiting[i] == 0) ready.push(i);
  }
  std::vector<bool> placed(count);
  std::vector<Target> ordered;
  ordered.reserve(count);
  int last_wave = -1;
  int after_root_wave = 0;  // the lowest wave of a target placed after `/`
  while (!ready.empty()) {  // the kept edges have no cycle: every target gets ready in turn
    const size_t next = ready.top();
    ready.pop();
    Target& target = targets[next];
    target.wave = after_root_wave;
    for (size_t dependency : inner[next])
      if (placed[dependency]) target.wave = std::max(target.wave, targets[dependency].wave + 1);
    if (next == root) {
      target.wave = last_wave + 1;
      after_root_wave = target.wave + 1;
    }
    last_wave = std::max(last_wave, target.wave);
    placed[next] = true;
    for (size_t dependent : outer[next])
      if (--waiting[dependent] == 0) ready.push(dependent);
    ordered.push_back(target);
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
  const std::unordered_set<std::string_view> only_set(only.begin(), only.end());
  std::unordered_set<std::string_view> matched_only;
  const MountIndex index(mounts);
  const MountEntry* root_mount = index.containing("/");
  const std::optional<uint64_t> root_dev =
      root_mount && root_mount->mount_point == "/" ? std::optional(dev_key(*root_mount)) : std::nullopt;

  // Group mounts by superblock, in mount order; a shadowed mount is left out of its group.
  std::vector<std::vector<const MountEntry*>> groups;  // in the order of each superblock's first mount
  std::unordered_map<uint64_t, size_t> group_of;       // dev -> index in `groups`
  for (size_t i = 0; i < mounts.size(); ++i) {
    auto [group, added] = group_of.try_emplace(dev_key(mounts[i]), groups.size());
    if (added) groups.emplace_back();
    if (!index.shadowed(i)) groups[group->second].push_back(&mounts[i]);
  }

  std::vector<Target> targets;
  for (auto it = groups.rbegin(); it != groups.rend(); ++it) {
    const auto& group = *it;
    if (group.empty()) continue;
    const MountEntry* chosen = nullptr;
    if (!only.empty()) {
      // Frozen through the first listed mount; every listed mount of the superblock is matched.
      for (const MountEntry* m : group) {
        if (!only_set.count(m->mount_point)) continue;
        if (!chosen) chosen = m;
        matched_only.insert(m->mount_point);
      }
      if (!chosen) continue;  // outside the allow-list: never considered
      if (root_dev && dev_key(*chosen) == *root_dev && !only_set.count("/")) {
        // Freezing the root filesystem hangs whatever writes to it: only an explicit `/` may.
        plan.errors.push_back(fmt::format(
            "OnlyMounts= names {}, which is on the root filesystem (a bind mount of /): list / itself to freeze it",
            chosen->mount_point));
        continue;
      }
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
  plan.targets = order_targets(std::move(targets), index, backing, root_dev);
  return plan;
}

}  // namespace hvvss::fsfreeze
