#include "agent/config.h"

#include "agent/log.h"

#include <fmt/format.h>
#include <ini.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>

namespace hvvss {

namespace fs = std::filesystem;

bool parse_duration(std::string_view text, std::chrono::milliseconds& out) {
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return false;
  std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  double scale;
  if (unit.empty() || unit == "s" || unit == "sec")
    scale = 1000;
  else if (unit == "ms" || unit == "msec")
    scale = 1;
  else if (unit == "min")
    scale = 60000;
  else
    return false;
  if (!(value > 0) || value * scale > 86400000.0 * 365) return false;
  out = std::chrono::milliseconds(std::llround(value * scale));
  return out.count() > 0;
}

namespace {

using Values = std::vector<std::string>;

Setting duration_setting(std::string_view section, std::string_view key, std::string_view flag, std::string_view help,
                         std::chrono::milliseconds AgentConfig::*member) {
  return {section, key, flag, help, "DURATION", false, [member](AgentConfig& c, const Values& v) -> std::string {
            if (!parse_duration(v.front(), c.*member))
              return fmt::format("invalid duration '{}' (use e.g. 15, 15s, 500ms, 2min)", v.front());
            return {};
          }};
}

Setting string_setting(std::string_view section, std::string_view key, std::string_view flag, std::string_view help,
                       std::string AgentConfig::*member) {
  return {section, key, flag, help, "PATH", false, [member](AgentConfig& c, const Values& v) -> std::string {
            if (v.front().empty()) return "value must not be empty";
            c.*member = v.front();
            return {};
          }};
}

// Lists accumulate; an empty assignment resets, as in systemd's unit files.
Setting list_setting(std::string_view section, std::string_view key, std::string_view flag, std::string_view help,
                     std::vector<std::string> fsfreeze::Filters::*member, bool absolute_paths) {
  return {section,
          key,
          flag,
          help,
          absolute_paths ? "PATH" : "GLOB",
          true,
          [member, absolute_paths](AgentConfig& c, const Values& v) -> std::string {
            auto& list = c.filters.*member;
            if (v.empty()) list.clear();
            for (const auto& item : v) {
              if (absolute_paths && !item.starts_with('/')) return fmt::format("'{}' is not an absolute path", item);
              list.push_back(item);
            }
            return {};
          }};
}

}  // namespace

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = {
      string_setting("Agent", "Device", "--device",
                     "VSS channel: the kernel's character device, or a simulator's SOCK_SEQPACKET socket",
                     &AgentConfig::device),
      string_setting("Agent", "RuntimeDirectory", "--runtime-dir",
                     "Directory for the intent record (must not be on a filesystem we freeze)",
                     &AgentConfig::runtime_dir),
      duration_setting("Agent", "ReplyBudgetSec", "--reply-budget",
                       "Every request is answered within this time (default 15s)", &AgentConfig::reply_budget),
      duration_setting("Agent", "AutoThawSec", "--auto-thaw",
                       "Thaw on our own if no THAW arrives this long after a freeze (default 60s)",
                       &AgentConfig::auto_thaw),
      {"Agent", "LogLevel", "--log-level", "trace, debug, info, warning, error, critical or off", "LEVEL", false,
       [](AgentConfig& c, const Values& v) -> std::string {
         if (!logging::parse_level(v.front())) return fmt::format("unknown log level '{}'", v.front());
         c.log_level = v.front();
         return {};
       }},
      list_setting("Filesystems", "OnlyMounts", "--only-mounts",
                   "Freeze only these mount points (an allow-list); nothing else is ever frozen",
                   &fsfreeze::Filters::only_mounts, true),
      list_setting("Filesystems", "ExcludeMounts", "--exclude-mounts", "Never freeze mount points matching these globs",
                   &fsfreeze::Filters::exclude_globs, false),
      {"Filesystems", "FreezableTypes", "--freezable-types",
       "Filesystem types frozen (default: ext4 ext3 ext2 xfs btrfs)", "TYPE", true,
       [](AgentConfig& c, const Values& v) -> std::string {
         c.filters.freezable_types = v;
         return {};
       }},
  };
  return table;
}

namespace {

struct ParseState {
  AgentConfig* config;
  std::string error;  // the first error; inih reports its line
};

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

int on_key(void* user, const char* section, const char* key, const char* value) {
  auto* state = static_cast<ParseState*>(user);
  const auto& table = settings();
  auto it =
      std::find_if(table.begin(), table.end(), [&](const Setting& s) { return s.section == section && s.key == key; });
  std::string error;
  if (it == table.end()) {
    error = fmt::format("unknown key '{}' in section [{}]", key, section);
  } else {
    Values values = it->list ? split_words(value) : Values{value};
    if (!it->list && values.front().empty())
      error = fmt::format("{}= needs a value", key);
    else if (auto e = it->apply(*state->config, values); !e.empty())
      error = fmt::format("{}=: {}", key, e);
  }
  if (error.empty()) return 1;
  if (state->error.empty()) state->error = error;
  return 0;
}

}  // namespace

std::string load_config_file(const std::string& path, AgentConfig& config) {
  ParseState state{&config, {}};
  int line = ini_parse(path.c_str(), &on_key, &state);
  if (line == -1) return fmt::format("{}: cannot open", path);
  if (line == -2) return fmt::format("{}: out of memory", path);
  if (line > 0) return fmt::format("{}:{}: {}", path, line, state.error.empty() ? "syntax error" : state.error);
  return {};
}

std::string load_config(const std::string& path, bool required, AgentConfig& config) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (auto e = load_config_file(path, config); !e.empty()) return e;
  } else if (required) {
    return fmt::format("{}: no such file", path);
  }
  std::vector<fs::path> dropins;
  for (const auto& entry : fs::directory_iterator(path + ".d", ec))
    if (entry.path().extension() == ".conf" && entry.is_regular_file(ec)) dropins.push_back(entry.path());
  std::sort(dropins.begin(), dropins.end());
  for (const auto& dropin : dropins)
    if (auto e = load_config_file(dropin, config); !e.empty()) return e;
  return {};
}

}  // namespace hvvss
