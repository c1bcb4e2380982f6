#include "agent/intent.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <unistd.h>

namespace hvvss {

std::string IntentRecord::write(const std::vector<std::string>& lines) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return fmt::format("cannot create {}: {}", dir_.string(), ec.message());
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

}  // namespace hvvss
