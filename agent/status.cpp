#include "agent/status.h"

#include <cstring>

namespace hvvss {

Status Status::from_errno(int err, std::string_view message) {
  return Status(fmt::format("{}: {}", message, std::strerror(err)), err);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

Status Status::prefixed(std::string_view context) const {
  if (is_ok()) return *this;
  return Status(fmt::format("{}: {}", context, state_->message), state_->err, state_->code);
}

}  // namespace hvvss
