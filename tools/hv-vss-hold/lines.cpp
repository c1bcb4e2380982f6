#include "tools/hv-vss-hold/lines.h"

namespace hvvss::hold {

std::optional<std::string> LineSplitter::next() {
  size_t nl = buffer_.find('\n');
  if (nl == std::string::npos) {
    if (!finished_ || buffer_.empty()) return std::nullopt;
    nl = buffer_.size();
  }
  std::string line = buffer_.substr(0, nl);
  buffer_.erase(0, nl < buffer_.size() ? nl + 1 : nl);
  return line;
}

}  // namespace hvvss::hold
