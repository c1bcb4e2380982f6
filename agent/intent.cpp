#include "agent/intent.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

namespace hvvss {

namespace {
Status make_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::from_errno(ec.value(), fmt::format("cannot create {}", dir.string()));
  return {};
}
}  // namespace

Status IntentRecord::add(const Entry& entry) const {
  if (Status s = make_dir(dir_); !s) return s;
  auto path = dir_ / entry.dev;
  std::string text = entry.mount_point + "\n";
  // O_NONBLOCK: a FIFO planted in its place fails at once (ENXIO) instead of hanging the freeze.
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
  if (!fd) return Status::from_errno(errno, fmt::format("cannot create {}", path.string()));
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    int err = n < 0 ? errno : ENOSPC;
    unlink(path.c_str());
    return Status::from_errno(err, fmt::format("cannot write {}", path.string()));
  }
  return {};
}

void IntentRecord::remove(const std::string& dev) const { unlink((dir_ / dev).c_str()); }

Status IntentRecord::read(std::vector<Entry>* entries) const {
  entries->clear();
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  if (ec) return Status::from_errno(ec.value(), fmt::format("cannot read {}", dir_.string()));
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (entries->size() == kMaxEntries)
      return Status::errorf("{} holds more than {} entries: not a record this agent wrote", dir_.string(), kMaxEntries);
    auto path = it->path();
    // O_NONBLOCK: a FIFO planted there must not hang the start-up.
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
    if (!fd) return Status::from_errno(errno, fmt::format("cannot open {}", path.string()));
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return Status::from_errno(errno, fmt::format("cannot stat {}", path.string()));
    if (!S_ISREG(st.st_mode)) return Status::errorf("{} is not a regular file", path.string());
    if (static_cast<size_t>(st.st_size) > kMaxEntryBytes)
      return Status::errorf("{} is larger than {} bytes: not a record this agent wrote", path.string(), kMaxEntryBytes);
    std::string text(static_cast<size_t>(st.st_size), '\0');
    ssize_t n = pread(fd.get(), text.data(), text.size(), 0);
    if (n < 0) return Status::from_errno(errno, fmt::format("cannot read {}", path.string()));
    text.resize(static_cast<size_t>(n));
    if (!text.empty() && text.back() == '\n') text.pop_back();
    entries->push_back({path.filename().string(), text});
  }
  if (ec) return Status::from_errno(ec.value(), fmt::format("cannot read {}", dir_.string()));
  return {};
}

Status RuntimeLock::acquire(const std::filesystem::path& dir) {
  if (Status s = make_dir(dir); !s) return s;
  auto path = dir / "lock";
  fd_ = UniqueFd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_) return Status::from_errno(errno, fmt::format("cannot open {}", path.string()));
  if (flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    [[maybe_unused]] ssize_t n = pread(fd_.get(), pid, sizeof pid - 1, 0);
    fd_.reset();
    return Status::errorf("another hv-vss-agent (pid {}) is running with runtime directory {}", pid, dir.string());
  }
  std::string pid = std::to_string(getpid());
  if (ftruncate(fd_.get(), 0) != 0 || pwrite(fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return Status::from_errno(errno, fmt::format("cannot write {}", path.string()));
  return {};
}

}  // namespace hvvss
