#include "tools/hv-vss-sim/timeline.h"

#include <fmt/format.h>

namespace hvvss::sim {

std::string Timeline::str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += {'\\', c};
    else if (static_cast<unsigned char>(c) < 0x20)
      out += fmt::format("\\u{:04x}", c);
    else
      out += c;
  }
  return out + "\"";
}

std::string Timeline::num(double value) { return fmt::format("{:.3f}", value); }

namespace {
// A JSON value as a person reads it: strings without their quotes and escapes.
std::string plain(std::string_view value) {
  if (value.size() < 2 || value.front() != '"') return std::string(value);
  std::string out;
  for (size_t i = 1; i + 1 < value.size(); ++i) {
    if (value[i] == '\\' && i + 2 < value.size()) ++i;
    out += value[i];
  }
  return out;
}
std::string field(const std::vector<Timeline::Field>& fields, std::string_view key) {
  for (const auto& [k, v] : fields)
    if (k == key) return plain(v);
  return {};
}
}  // namespace

std::string Timeline::text_line(double t_ms, std::string_view name, const std::vector<Field>& fields) const {
  std::string what;
  if (name == "request") {
    what = fmt::format("host → guest  {}", field(fields, "op"));
  } else if (name == "reply") {
    what = fmt::format("host ← guest  {}: {} after {} ms", field(fields, "op"), field(fields, "status"),
                       field(fields, "latency_ms"));
    if (field(fields, "ok") != "true") what += fmt::format("  FAILED: {}", field(fields, "problem"));
  } else {
    what = fmt::format("host          {}", name);
    for (const auto& [key, value] : fields) what += fmt::format(" {}={}", key, plain(value));
  }
  return fmt::format("{:9.3f} s  {}\n", t_ms / 1000, what);
}

void Timeline::event(std::string_view name, const std::vector<Field>& fields) {
  auto now = std::chrono::steady_clock::now();  // CLOCK_MONOTONIC: comparable across processes
  double t = std::chrono::duration<double, std::milli>(now - start_).count();
  if (format_ == Format::Text) {
    std::fputs(text_line(t, name, fields).c_str(), stdout);
    std::fflush(stdout);
    return;
  }
  double mono = std::chrono::duration<double, std::milli>(now.time_since_epoch()).count();
  std::string line = fmt::format("{{\"t_ms\":{},\"mono_ms\":{},\"event\":{}", num(t), num(mono), str(name));
  for (const auto& [key, value] : fields) line += fmt::format(",{}:{}", str(key), value);
  line += "}\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace hvvss::sim
