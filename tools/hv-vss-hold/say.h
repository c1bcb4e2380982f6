// hv-vss-hold's only output: lines on stderr, which systemd passes to the journal. Nothing is
// ever written to a file: the filesystems are about to be frozen while it runs.
#pragma once

#include <fmt/format.h>
#include <cstdio>

namespace hvvss::hold {

template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  std::string line = "hv-vss-hold: " + fmt::format(format, std::forward<Args>(args)...) + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace hvvss::hold
