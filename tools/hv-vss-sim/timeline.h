// The simulator's output: one JSON object per line on stdout, flushed at once, so that tests
// and users can follow a transaction as it happens and machines can parse it afterwards.
#pragma once

#include "agent/json.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hvvss::sim {

class Timeline {
 public:
  using Field = std::pair<std::string_view, std::string>;
  static std::string str(std::string_view s) { return json_quote(s); }
  static std::string num(double value);
  static std::string boolean(bool value) { return value ? "true" : "false"; }

  void event(std::string_view name, const std::vector<Field>& fields = {});

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace hvvss::sim
