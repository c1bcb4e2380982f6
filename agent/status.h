// The one error type at module edges, in the style of LevelDB's Status: a call either succeeded
// or failed with a sentence for the admin (and, when a syscall failed, its errno), and a code that
// tells a caller across the bus what kind of failure it was. Values come back through pointer
// out-parameters, as in LevelDB. std::expected would read better, but the
// Debian 12 clang that runs clang-tidy and the fuzzers cannot compile libstdc++'s <expected>.
#pragma once

#include <fmt/format.h>
#include <memory>
#include <string>
#include <string_view>

namespace hvvss {

class [[nodiscard]] Status {
 public:
  // What kind of failure: most are just errors; the others are refusals a client can act on.
  enum class Code { Error, InvalidArgument, AccessDenied, Exists, NotFound, Busy, LimitExceeded };

  Status() = default;  // success
  static Status ok() { return {}; }
  static Status error(std::string message) { return Status(std::move(message), 0); }
  static Status refusal(Code code, std::string message) { return Status(std::move(message), 0, code); }
  // "message: strerror(err)", and errno() returns err.
  static Status from_errno(int err, std::string_view message);
  template <typename... Args>
  static Status errorf(fmt::format_string<Args...> format, Args&&... args) {
    return error(fmt::format(format, std::forward<Args>(args)...));
  }

  bool is_ok() const { return !state_; }
  explicit operator bool() const { return is_ok(); }
  // The sentence for logs and replies; "" for success.
  const std::string& message() const;
  int error_number() const { return state_ ? state_->err : 0; }
  Code code() const { return state_ ? state_->code : Code::Error; }
  // The same failure with `context` in front: "reading /etc/x: no such file".
  Status prefixed(std::string_view context) const;

 private:
  struct State {
    std::string message;
    int err;
    Code code;
  };
  Status(std::string message, int err, Code code = Code::Error)
      : state_(std::make_shared<const State>(State{std::move(message), err, code})) {}
  std::shared_ptr<const State> state_;  // null: success, which costs nothing
};

}  // namespace hvvss
