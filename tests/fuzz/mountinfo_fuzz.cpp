// Fuzzes the mount table parser and the planner behind it with arbitrary mountinfo text. A mount
// whose source is an absolute path outside /dev stands for a loop device backed by that file, so
// the stacking order is planned too. Each table is planned with the default filters and with an
// allow-list of every mount point in it; every plan must be one the freeze can follow: one target
// per visible superblock (visible as a path walk through the mount tree finds it), waves in order
// with every loop-backed filesystem before its backing filesystem, the root filesystem last and
// alone in its wave (only what holds its image, if it is on a loop device, may follow it), and
// "not a visible mount point" only for paths that are not.
#include "plugins/fsfreeze/mountinfo.h"
#include "plugins/fsfreeze/targets.h"
#include "tests/fuzz/fuzz_check.h"

#include <fmt/format.h>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::fsfreeze {
namespace {

std::string describe(const Plan& plan) {
  std::string text;
  for (const auto& t : plan.targets)
    text += fmt::format("  wave {} {} {} ({})\n", t.wave, t.mount.dev(), t.mount.mount_point, t.mount.fstype);
  for (const auto& e : plan.errors) text += fmt::format("  error: {}\n", e);
  return text;
}

// The reference answer to "which mount does this path reach", walked the way a path lookup walks
// the mount tree: a directory reaches the last mount made on the mount holding the directory above
// it, then the top of whatever is stacked on that; `/` (or a path whose parent the table does not
// show) starts from the last mount there not made on another mount there. Slow and plain on
// purpose: the planner's index is checked against it.
class ReferenceWalk {
 public:
  explicit ReferenceWalk(const std::vector<MountEntry>& mounts) : mounts_(mounts) {}

  const MountEntry* reached_at(const std::string& point) {
    if (auto known = reached_.find(point); known != reached_.end()) return known->second;
    std::vector<const MountEntry*> here;
    for (const auto& m : mounts_)
      if (m.mount_point == point) here.push_back(&m);
    const MountEntry* below = nullptr;
    if (size_t slash = point.rfind('/'); point != "/" && slash != std::string::npos)
      below = holder_of(slash == 0 ? "/" : point.substr(0, slash));
    const MountEntry* reached = nullptr;
    if (below) {
      reached = last_made_on(here, below->mount_id);
    } else {
      for (const MountEntry* m : here)
        if (std::none_of(here.begin(), here.end(),
                         [&](const MountEntry* o) { return o != m && o->mount_id == m->parent_id; }))
          reached = m;
    }
    for (size_t climbed = 0; reached && climbed < here.size(); ++climbed) {
      const MountEntry* above = last_made_on(here, reached->mount_id);
      if (!above) break;
      reached = above;
    }
    return reached_[point] = reached;
  }

  // The filesystem holding `path`: the mount reached at its longest mount point prefix.
  const MountEntry* holder_of(const std::string& path) {
    for (std::string at = path;;) {
      if (const MountEntry* m = reached_at(at)) return m;
      size_t slash = at.rfind('/');
      if (at == "/" || slash == std::string::npos) return nullptr;
      at = slash == 0 ? "/" : at.substr(0, slash);
    }
  }

 private:
  static const MountEntry* last_made_on(const std::vector<const MountEntry*>& here, int parent_id) {
    const MountEntry* found = nullptr;
    for (const MountEntry* m : here)
      if (m->parent_id == parent_id && m->mount_id != parent_id) found = m;
    return found;
  }

  const std::vector<MountEntry>& mounts_;
  std::map<std::string, const MountEntry*> reached_;
};

// The mounts visible at their mount point.
std::map<std::string, const MountEntry*> visible_mounts(const std::vector<MountEntry>& mounts, ReferenceWalk& walk) {
  std::map<std::string, const MountEntry*> visible;
  for (const auto& m : mounts)
    if (const MountEntry* reached = walk.reached_at(m.mount_point)) visible[m.mount_point] = reached;
  return visible;
}

// Sources that look like files stand for the backing files of the loop devices they are on.
std::map<std::string, std::vector<std::string>> fake_backing_files(const std::vector<MountEntry>& mounts) {
  std::map<std::string, std::vector<std::string>> files;
  for (const auto& m : mounts)
    if (m.source.starts_with('/') && !m.source.starts_with("/dev/")) files[m.dev()].push_back(m.source);
  return files;
}

// The targets reachable from `from` through one or more edges.
std::set<size_t> reachable(size_t from, const std::vector<std::set<size_t>>& edges) {
  std::vector<size_t> stack(edges[from].begin(), edges[from].end());
  std::set<size_t> seen;
  while (!stack.empty()) {
    size_t at = stack.back();
    stack.pop_back();
    if (seen.insert(at).second) stack.insert(stack.end(), edges[at].begin(), edges[at].end());
  }
  return seen;
}

void check_plan(const std::vector<MountEntry>& mounts, const Filters& filters,
                const std::map<std::string, std::vector<std::string>>& backing_files) {
  LoopBackingFiles backing = [&](unsigned major, unsigned minor) {
    auto it = backing_files.find(fmt::format("{}:{}", major, minor));
    return it == backing_files.end() ? std::vector<std::string>{} : it->second;
  };
  const Plan plan = plan_targets(mounts, filters, backing);
  const std::string detail = describe(plan);
  ReferenceWalk walk(mounts);
  const auto visible = visible_mounts(mounts, walk);
  const auto& targets = plan.targets;

  std::set<std::string> devs;
  std::map<std::string, size_t> index_of_dev;
  for (size_t i = 0; i < targets.size(); ++i) {
    const MountEntry& m = targets[i].mount;
    FUZZ_CHECK(devs.insert(m.dev()).second, "two targets share a superblock\n" + detail);
    index_of_dev[m.dev()] = i;
    auto shown = visible.find(m.mount_point);
    FUZZ_CHECK(shown != visible.end() && shown->second->dev() == m.dev(), "a target that is not visible\n" + detail);
    FUZZ_CHECK(!m.read_only_super(), detail);
    if (filters.only_mounts.empty())
      FUZZ_CHECK(std::count(filters.freezable_types.begin(), filters.freezable_types.end(), m.fstype) == 1, detail);
    else
      FUZZ_CHECK(std::count(filters.only_mounts.begin(), filters.only_mounts.end(), m.mount_point) != 0, detail);
    if (i > 0) FUZZ_CHECK(targets[i - 1].wave <= targets[i].wave, "waves out of order\n" + detail);
  }

  // before[i]: the targets that target i must be frozen before (those holding its backing files).
  std::vector<std::set<size_t>> before(targets.size());
  for (size_t i = 0; i < targets.size(); ++i)
    for (const auto& file : backing(targets[i].mount.major, targets[i].mount.minor))
      if (const MountEntry* holder = walk.holder_of(file))
        if (auto outer = index_of_dev.find(holder->dev()); outer != index_of_dev.end() && outer->second != i)
          before[i].insert(outer->second);
  for (size_t i = 0; i < targets.size(); ++i) {
    if (reachable(i, before).count(i)) continue;  // on a cycle, which no order can satisfy
    for (size_t outer : before[i])
      FUZZ_CHECK(targets[i].wave < targets[outer].wave,
                 fmt::format("{} is not frozen before {}, which holds its backing file\n", targets[i].mount.mount_point,
                             targets[outer].mount.mount_point) +
                     detail);
  }

  // The root filesystem (the one visible at `/`, however a target reaches it) goes last in a wave of
  // its own, followed only by what holds its backing file (and so on).
  auto root_mount = visible.find("/");
  auto root = std::find_if(targets.begin(), targets.end(), [&](const Target& t) {
    return root_mount != visible.end() && t.mount.dev() == root_mount->second->dev();
  });
  if (root != targets.end()) {
    const size_t r = static_cast<size_t>(root - targets.begin());
    FUZZ_CHECK(r == 0 || targets[r - 1].wave < root->wave, "/ shares its wave\n" + detail);
    FUZZ_CHECK(r + 1 == targets.size() || targets[r + 1].wave > root->wave, "/ shares its wave\n" + detail);
    const std::set<size_t> stacked_under_root = reachable(r, before);
    for (size_t i = r + 1; i < targets.size(); ++i)
      FUZZ_CHECK(stacked_under_root.count(i),
                 targets[i].mount.mount_point + " follows / but holds no image of it\n" + detail);
  }

  for (const auto& error : plan.errors) {
    if (!error.ends_with("which is not a visible mount point")) continue;
    auto named = std::find_if(filters.only_mounts.begin(), filters.only_mounts.end(), [&](const std::string& path) {
      return error == fmt::format("OnlyMounts= names {}, which is not a visible mount point", path);
    });
    FUZZ_CHECK(named != filters.only_mounts.end() && !visible.count(*named),
               "an allow-listed visible mount point is reported missing\n" + detail);
  }
}

}  // namespace
}  // namespace hvvss::fsfreeze

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hvvss::fsfreeze;
  std::vector<MountEntry> mounts;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (hvvss::Status parsed = parse_mountinfo(text, &mounts); !parsed) {
    FUZZ_CHECK(parsed.message().starts_with("line "), parsed.message());
    return 0;
  }
  const auto backing_files = fake_backing_files(mounts);
  check_plan(mounts, {}, backing_files);
  // OnlyMounts= holds absolute paths without a trailing '/' (the planner strips it).
  Filters allow_all;
  for (const auto& m : mounts)
    if (m.mount_point.starts_with('/') && (m.mount_point == "/" || !m.mount_point.ends_with('/')))
      allow_all.only_mounts.push_back(m.mount_point);
  check_plan(mounts, allow_all, backing_files);
  return 0;
}
