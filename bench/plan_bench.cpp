// hv-vss-bench-plan: how long fsfreeze takes to parse a mount table and plan a snapshot of it when
// the table is huge. It synthesises the mountinfo of N bind mounts of one filesystem (the kernel's
// default fs.mount-max is 100,000) beside a few distinct ones, one of them loop-backed, and prints
// the median time of parse + plan over several runs; --max-ms makes a slower median an error, so
// a return to quadratic planning fails CI.
#include "plugins/fsfreeze/mountinfo.h"
#include "plugins/fsfreeze/targets.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace {

using namespace hvvss::fsfreeze;
using Clock = std::chrono::steady_clock;

// Five freezable filesystems (root, /boot, /srv, /data and a loop-mounted image on /data), a
// tmpfs, and `binds` bind mounts of /srv's xfs, each at a path of its own.
std::string synthetic_mountinfo(int binds) {
  std::string text =
      "1 0 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
      "2 1 8:1 / /boot rw,relatime shared:2 - ext4 /dev/sda1 rw\n"
      "3 1 8:17 / /srv rw,relatime shared:3 - xfs /dev/sdb1 rw,attr2,inode64\n"
      "4 1 0:40 / /data rw,relatime shared:4 - btrfs /dev/sdc rw,space_cache=v2,subvolid=5,subvol=/\n"
      "5 4 7:0 / /data/image rw,relatime shared:5 - ext4 /dev/loop0 rw\n"
      "6 1 0:24 / /run rw,nosuid,nodev shared:6 - tmpfs tmpfs rw,mode=755\n";
  text.reserve(text.size() + static_cast<size_t>(binds) * 100);
  for (int i = 0; i < binds; ++i)
    text += fmt::format("{} 3 8:17 /exports /srv/binds/{} rw,relatime shared:{} - xfs /dev/sdb1 rw,attr2,inode64\n",
                        100 + i, i, 100 + i);
  return text;
}

std::vector<std::string> backing_files(unsigned major, unsigned minor) {
  if (major == 7 && minor == 0) return {"/data/images/disk.img"};
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times parsing and planning a mount table of N bind mounts (median of several runs)",
               "hv-vss-bench-plan"};
  int binds = 100000;
  int runs = 5;
  double max_ms = 0;
  app.add_option("--mounts", binds, "Bind mounts in the synthetic table (default 100000)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--runs", runs, "Runs; the median is reported (default 5)")->check(CLI::PositiveNumber);
  app.add_option("--max-ms", max_ms, "Exit 1 when the median parse + plan takes longer than this");
  CLI11_PARSE(app, argc, argv);

  const std::string text = synthetic_mountinfo(binds);
  std::vector<double> parse_ms, total_ms;
  size_t targets = 0;
  for (int run = 0; run < runs; ++run) {
    auto start = Clock::now();
    std::vector<MountEntry> mounts;
    if (hvvss::Status s = parse_mountinfo(text, &mounts); !s) {
      fmt::print(stderr, "hv-vss-bench-plan: {}\n", s.message());
      return 2;
    }
    auto parsed = Clock::now();
    Plan plan = plan_targets(mounts, {}, backing_files);
    auto planned = Clock::now();
    targets = plan.targets.size();
    parse_ms.push_back(std::chrono::duration<double, std::milli>(parsed - start).count());
    total_ms.push_back(std::chrono::duration<double, std::milli>(planned - start).count());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double total = median(total_ms);
  fmt::print(
      "plan: {} bind mounts + 6 filesystems -> {} targets: parse + plan {:.1f} ms (parse {:.1f} ms), median of {}\n",
      binds, targets, total, median(parse_ms), runs);
  if (max_ms > 0 && total > max_ms) {
    fmt::print(stderr, "hv-vss-bench-plan: {:.1f} ms is over the bound of {} ms\n", total, max_ms);
    return 1;
  }
  return 0;
}
