#include "agent/intent.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace hvvss {

namespace {
std::string make_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec ? fmt::format("cannot create {}: {}", dir.string(), ec.message()) : std::string();
}
}  // namespace

std::string IntentRecord::write(const std::vector<std::string>& lines) const {
  if (auto e = make_dir(dir_); !e.empty()) return e;
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  auto tmp = dir_ / "intent.tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fmt::format("cannot create {}: {}", tmp.string(), std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int saved = errno;
  close(fd);
  if (!ok) return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(saved));
  if (rename(tmp.c_str(), path().c_str()) != 0)
    return fmt::format("cannot rename {} to {}: {}", tmp.string(), path().string(), std::strerror(errno));
  return {};
}

std::vector<std::string> IntentRecord::read() const {
  std::vector<std::string> lines;
  std::ifstream in(path());
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

void IntentRecord::clear() const {
  std::error_code ec;
  std::filesystem::remove(path(), ec);
}

std::string RuntimeLock::acquire(const std::filesystem::path& dir) {
  if (auto e = make_dir(dir); !e.empty()) return e;
  auto path = dir / "lock";
  fd_ = UniqueFd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) return fmt::format("cannot open {}: {}", path.string(), std::strerror(errno));
  if (flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    [[maybe_unused]] ssize_t n = pread(fd_.get(), pid, sizeof pid - 1, 0);
    fd_.reset();
    return fmt::format("another hv-vss-agent (pid {}) is running with runtime directory {}", pid, dir.string());
  }
  std::string pid = std::to_string(getpid());
  if (ftruncate(fd_.get(), 0) != 0 || pwrite(fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return fmt::format("cannot write {}: {}", path.string(), std::strerror(errno));
  return {};
}

}  // namespace hvvss
