#include "agent/json.h"

#include <fmt/format.h>

namespace hvvss {

std::string json_quote(std::string_view s) {
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

JsonObject& JsonObject::raw(std::string_view key, std::string_view json) {
  if (!members_.empty()) members_ += ',';
  members_ += json_quote(key);
  members_ += ':';
  members_ += json;
  return *this;
}

std::string json_array(const std::vector<std::string>& items) {
  return "[" + fmt::format("{}", fmt::join(items, ",")) + "]";
}

}  // namespace hvvss
