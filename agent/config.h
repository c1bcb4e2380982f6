// The agent's settings: /etc/hv-vss/agent.conf, then agent.conf.d/*.conf in lexical order,
// then the command line, which wins. Every key has a command-line twin; both are declared once,
// in the table returned by settings(). Errors name the file and line (or the option).
#pragma once

#include "plugins/fsfreeze/targets.h"

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss {

inline constexpr std::string_view kDefaultConfigPath = "/etc/hv-vss/agent.conf";

struct AgentConfig {
  std::string device = "/dev/vmbus/hv_vss";
  std::string runtime_dir = "/run/hv-vss-agent";
  std::chrono::milliseconds reply_budget{15000};
  std::chrono::milliseconds auto_thaw{60000};
  std::string log_level = "info";
  fsfreeze::Filters filters;
};

// One setting: where it lives in the INI file, its command-line twin, and how a value applies.
struct Setting {
  std::string_view section;
  std::string_view key;
  std::string_view flag;
  std::string_view help;
  std::string_view placeholder;  // what --help shows for the value: PATH, DURATION, ...
  bool list;                     // whitespace-separated in the file, several values on the command line
  // Applies `values` (one value unless `list`); returns an error text or "".
  std::function<std::string(AgentConfig&, const std::vector<std::string>& values)> apply;
};

const std::vector<Setting>& settings();

// Parses one INI file into `config`. Returns "FILE:LINE: message" on error, "" otherwise.
std::string load_config_file(const std::string& path, AgentConfig& config);
// Loads `path` (missing is fine unless `required`) and then `path`.d/*.conf.
std::string load_config(const std::string& path, bool required, AgentConfig& config);

// "15", "15s", "500ms", "2min" → milliseconds; must be positive.
bool parse_duration(std::string_view text, std::chrono::milliseconds& out);

}  // namespace hvvss
