// Parses /proc/self/mountinfo (proc(5)): one entry per mount with the superblock's device
// number, the mount's root within the filesystem, and per-mount and per-superblock options.
// Paths are unescaped from the kernel's octal form (\040 for a space).
#pragma once

#include "agent/status.h"

#include <string>
#include <string_view>
#include <vector>

namespace hvvss::fsfreeze {

struct MountEntry {
  int mount_id = 0;
  int parent_id = 0;
  unsigned major = 0, minor = 0;
  std::string root;
  std::string mount_point;
  std::string mount_options;
  std::string fstype;
  std::string source;
  std::string super_options;

  std::string dev() const;       // "major:minor", the superblock's identity
  bool read_only_super() const;  // `ro` in the super options: the filesystem itself is read-only
};

// Errors name the line: "line 3: too few fields".
Status parse_mountinfo(std::string_view text, std::vector<MountEntry>* mounts);
Status read_mountinfo(const std::string& path, std::vector<MountEntry>* mounts);
// The text of a /proc file (which reports no size, so it is read in chunks).
Status read_proc_file(const std::string& path, std::string* text);

std::string unescape_octal(std::string_view text);
std::string escape_octal(std::string_view text);  // escapes space, tab, newline and backslash

}  // namespace hvvss::fsfreeze
