#include "plugins/fsfreeze/mountinfo.h"

#include "agent/unique_fd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <charconv>

namespace hvvss::fsfreeze {

std::string MountEntry::dev() const { return fmt::format("{}:{}", major, minor); }

bool MountEntry::read_only_super() const {
  std::string_view opts = super_options;
  while (!opts.empty()) {
    auto comma = opts.find(',');
    if (opts.substr(0, comma) == "ro") return true;
    if (comma == std::string_view::npos) break;
    opts.remove_prefix(comma + 1);
  }
  return false;
}

std::string unescape_octal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' && text[i + 2] >= '0' &&
        text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
      out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string escape_octal(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\')
      out += fmt::format("\\{:03o}", static_cast<unsigned char>(c));
    else
      out += c;
  }
  return out;
}

namespace {

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

template <typename T>
bool parse_number(std::string_view text, T& value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

Status parse_line(std::string_view line, MountEntry* out) {
  auto fields = split_fields(line);
  // id parent major:minor root mount-point options [optional...] - fstype source super-options
  size_t dash = 6;
  while (dash < fields.size() && fields[dash] != "-") ++dash;
  if (dash + 3 >= fields.size()) return Status::error("too few fields");
  MountEntry entry;
  auto colon = fields[2].find(':');
  if (!parse_number(fields[0], entry.mount_id) || !parse_number(fields[1], entry.parent_id) ||
      colon == std::string_view::npos || !parse_number(fields[2].substr(0, colon), entry.major) ||
      !parse_number(fields[2].substr(colon + 1), entry.minor))
    return Status::error("bad mount id or device number");
  entry.root = unescape_octal(fields[3]);
  entry.mount_point = unescape_octal(fields[4]);
  entry.mount_options = std::string(fields[5]);
  entry.fstype = unescape_octal(fields[dash + 1]);
  entry.source = unescape_octal(fields[dash + 2]);
  entry.super_options = std::string(fields[dash + 3]);
  *out = std::move(entry);
  return {};
}

}  // namespace

Status parse_mountinfo(std::string_view text, std::vector<MountEntry>* mounts) {
  std::vector<MountEntry> entries;
  entries.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    MountEntry entry;
    if (Status s = parse_line(line, &entry); !s) return s.prefixed(fmt::format("line {}", line_no));
    entries.push_back(std::move(entry));
  }
  *mounts = std::move(entries);
  return {};
}

Status read_proc_file(const std::string& path, std::string* text) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::from_errno(errno, fmt::format("cannot open {}", path));
  std::string contents;
  char chunk[16384];
  ssize_t n;
  while ((n = read(fd.get(), chunk, sizeof chunk)) > 0) contents.append(chunk, static_cast<size_t>(n));
  if (n < 0) return Status::from_errno(errno, fmt::format("cannot read {}", path));
  *text = std::move(contents);
  return {};
}

Status read_mountinfo(const std::string& path, std::vector<MountEntry>* mounts) {
  std::string text;
  if (Status s = read_proc_file(path, &text); !s) return s;
  return parse_mountinfo(text, mounts).prefixed(path);
}

}  // namespace hvvss::fsfreeze
