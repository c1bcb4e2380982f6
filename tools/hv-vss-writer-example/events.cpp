#include "tools/hv-vss-writer-example/events.h"

#include <fmt/format.h>
#include <time.h>
#include <cstdio>

namespace hvvss::writer {
namespace {

std::string quoted_if_needed(std::string_view value) {
  if (!value.empty() && value.find_first_of(" \"\\") == std::string_view::npos) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

}  // namespace

void print_event(std::string_view event, const std::vector<Field>& fields) {
  std::string line = fmt::format("event={}", event);
  for (const auto& [key, value] : fields) line += fmt::format(" {}={}", key, quoted_if_needed(value));
  std::fputs((line + '\n').c_str(), stdout);
  std::fflush(stdout);
}

void print_fatal(std::string_view what, std::string_view message) {
  print_event("error", {{"message", fmt::format("{}: {}", what, message)}});
  fmt::print(stderr, "hv-vss-writer-example: {}: {}\n", what, message);
}

uint64_t mono_usec() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
}

}  // namespace hvvss::writer
