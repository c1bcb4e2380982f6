#include "tools/hv-vss-sim/timeline.h"

#include <fmt/format.h>

namespace hvvss::sim {

std::string Timeline::num(double value) { return fmt::format("{:.3f}", value); }

void Timeline::event(std::string_view name, const std::vector<Field>& fields) {
  auto now = std::chrono::steady_clock::now();  // CLOCK_MONOTONIC: comparable across processes
  double t = std::chrono::duration<double, std::milli>(now - start_).count();
  double mono = std::chrono::duration<double, std::milli>(now.time_since_epoch()).count();
  std::string line = fmt::format("{{\"t_ms\":{},\"mono_ms\":{},\"event\":{}", num(t), num(mono), str(name));
  for (const auto& [key, value] : fields) line += fmt::format(",{}:{}", str(key), value);
  line += "}\n";
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace hvvss::sim
