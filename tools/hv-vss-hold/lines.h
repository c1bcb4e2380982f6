// Splits what a client writes to a pipe into lines. Bytes go in as they arrive; whole lines come
// out without their newline; at EOF the unfinished rest is a line of its own.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hvvss::hold {

class LineSplitter {
 public:
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  void finish() { finished_ = true; }  // EOF: no more bytes will come
  // The next complete line, or nothing until more bytes arrive.
  std::optional<std::string> next();

 private:
  std::string buffer_;
  bool finished_ = false;
};

}  // namespace hvvss::hold
