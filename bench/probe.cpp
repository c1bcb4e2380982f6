// hv-vss-bench-probe: the application whose writes a snapshot stalls. For each directory it
// first dirties --dirty-mib of page cache (buffered writes, no fsync), prints "ready", then
// appends a small record every millisecond from one thread per filesystem and times each
// write() against CLOCK_MONOTONIC. When stdin closes it writes every write slower than 0.2 ms,
// per filesystem, as JSON to --out.
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fmt/format.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

double mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

struct Write {
  double start_ms, latency_ms;
};

struct Filesystem {
  std::string dir;
  std::vector<Write> slow;  // preallocated: the writer never allocates while it may be stalled
  size_t writes = 0;
  double max_latency_ms = 0;
};

// A new file every time: rewriting a truncated one makes ext4 (auto_da_alloc) and xfs start
// writeback at close, and the page cache would no longer be dirty when the snapshot comes.
bool dirty(const std::string& dir, int mib) {
  std::string path = dir + "/dirty";
  unlink(path.c_str());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::vector<char> chunk(1 << 20, 'd');
  bool ok = true;
  for (int i = 0; i < mib && ok; ++i) ok = write(fd, chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size());
  close(fd);
  return ok;
}

void writer(Filesystem& fs, const std::atomic<bool>& stop) {
  int fd = open((fs.dir + "/probe.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  static const char record[64] = "probe record\n";
  timespec next{};
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!stop.load(std::memory_order_relaxed)) {
    double start = mono_ms();
    if (write(fd, record, sizeof record) < 0) break;
    double latency = mono_ms() - start;
    ++fs.writes;
    fs.max_latency_ms = std::max(fs.max_latency_ms, latency);
    if (latency >= 0.2 && fs.slow.size() < fs.slow.capacity()) fs.slow.push_back({start, latency});
    next.tv_nsec += 1'000'000;
    if (next.tv_nsec >= 1'000'000'000) {
      next.tv_nsec -= 1'000'000'000;
      ++next.tv_sec;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  int dirty_mib = 0;
  std::string out;
  std::vector<Filesystem> filesystems;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--dirty-mib" && i + 1 < argc) dirty_mib = std::atoi(argv[++i]);
    else if (arg == "--out" && i + 1 < argc) out = argv[++i];
    else if (arg.starts_with("--")) {
      std::fprintf(stderr, "usage: hv-vss-bench-probe [--dirty-mib N] --out FILE DIR...\n");
      return 2;
    } else filesystems.push_back({arg, {}, 0, 0});
  }
  if (out.empty() || filesystems.empty()) {
    std::fprintf(stderr, "usage: hv-vss-bench-probe [--dirty-mib N] --out FILE DIR...\n");
    return 2;
  }
  {
    std::vector<std::jthread> dirtiers;
    for (auto& fs : filesystems)
      dirtiers.emplace_back([&fs, dirty_mib] {
        if (!dirty(fs.dir, dirty_mib)) std::fprintf(stderr, "probe: cannot dirty %s: %s\n", fs.dir.c_str(), std::strerror(errno));
      });
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (auto& fs : filesystems) {
    fs.slow.reserve(1 << 20);
    writers.emplace_back(writer, std::ref(fs), std::cref(stop));
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
  }
  stop = true;
  for (auto& t : writers) t.join();

  std::string json = "{\"filesystems\":[";
  for (size_t i = 0; i < filesystems.size(); ++i) {
    const auto& fs = filesystems[i];
    json += fmt::format("{}{{\"dir\":\"{}\",\"writes\":{},\"max_latency_ms\":{:.3f},\"slow\":[", i ? "," : "", fs.dir,
                        fs.writes, fs.max_latency_ms);
    for (size_t j = 0; j < fs.slow.size(); ++j)
      json += fmt::format("{}[{:.3f},{:.3f}]", j ? "," : "", fs.slow[j].start_ms, fs.slow[j].latency_ms);
    json += "]}";
  }
  json += "]}\n";
  FILE* f = std::fopen(out.c_str(), "w");
  if (!f || std::fputs(json.c_str(), f) < 0) return 1;
  std::fclose(f);
  return 0;
}
