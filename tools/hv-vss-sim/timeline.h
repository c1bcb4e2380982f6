// The simulator's output: one line per event on stdout, flushed at once, so that tests and users
// can follow a transaction as it happens: a JSON object that machines parse, or (--format text) a
// sentence for people, with the host's requests and the daemon's replies spelled out.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hvvss::sim {

class Timeline {
 public:
  enum class Format { Json, Text };
  using Field = std::pair<std::string_view, std::string>;  // a key and a JSON value
  explicit Timeline(Format format = Format::Json) : format_(format) {}
  static std::string str(std::string_view s);  // a quoted, escaped JSON string
  static std::string num(double value);
  static std::string boolean(bool value) { return value ? "true" : "false"; }

  void event(std::string_view name, const std::vector<Field>& fields = {});

 private:
  std::string text_line(double t_ms, std::string_view name, const std::vector<Field>& fields) const;

  Format format_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace hvvss::sim
