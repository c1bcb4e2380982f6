// JSON text for the tools' machine-readable output (the simulator's timeline, hv-vssctl --json):
// a quoted string, and an object or array built member by member. Only what the tools print is
// covered: strings (D-Bus and our own, so valid UTF-8), unsigned integers, booleans and nesting.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss {

// `s` as a JSON string: quoted, with '"', '\' and control characters escaped.
std::string json_quote(std::string_view s);

// One JSON object; each member's value is given as text (json_quote, std::to_string, another
// object's str()), in the order the members are added.
class JsonObject {
 public:
  JsonObject& raw(std::string_view key, std::string_view json);
  JsonObject& string(std::string_view key, std::string_view value) { return raw(key, json_quote(value)); }
  JsonObject& number(std::string_view key, uint64_t value) { return raw(key, std::to_string(value)); }
  JsonObject& boolean(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
  std::string str() const { return "{" + members_ + "}"; }

 private:
  std::string members_;
};

// A JSON array of values given as text.
std::string json_array(const std::vector<std::string>& items);
// A JSON array of `to_json(item)` for each item.
template <typename T, typename ToJson>
std::string json_array(const std::vector<T>& items, ToJson to_json) {
  std::vector<std::string> values;
  values.reserve(items.size());
  for (const auto& item : items) values.push_back(to_json(item));
  return json_array(values);
}

}  // namespace hvvss
