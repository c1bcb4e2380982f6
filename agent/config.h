// The configuration schema: every setting of the daemon, declared by the agent and by each plugin,
// bound to a variable its declarer owns. The schema reads an INI file and its drop-ins
// (FILE.d/*.conf in lexical order), then the command line, which wins; every key has a
// command-line twin. Errors name the file and line, or the option.
#pragma once

#include "agent/status.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss {

// A configuration file (the main file or a drop-in) larger than this is refused unread.
inline constexpr size_t kMaxConfigFileBytes = size_t{1} << 20;

// One setting: where it lives in the INI file, its command-line twin, and how a value applies.
struct Setting {
  std::string section;
  std::string key;
  std::string flag;         // "--reply-budget"
  std::string help;         // --help shows it followed by "(config: [Section] Key=)"
  std::string placeholder;  // what --help shows for the value: PATH, DURATION, GLOB, ...
  // A list is whitespace-separated in a file and takes several values on the command line,
  // which replace the files' list.
  bool list = false;
  // Checks `values` (exactly one unless `list`) and writes them into the variable the setting is
  // bound to; for a list, no values means "empty the list".
  std::function<Status(const std::vector<std::string>& values)> apply;
};

// Builders binding a setting to a variable owned by the caller, which must outlive the schema.

// One value, which `parse` checks and stores.
Setting single_setting(std::string section, std::string key, std::string flag, std::string help,
                       std::string placeholder, std::function<Status(const std::string& value)> parse);
// A positive duration: "15" (seconds), "15s", "500ms", "2min".
// Where a duration must lie, and why (for the error message).
struct DurationRange {
  std::chrono::milliseconds min{1};
  std::chrono::milliseconds max{std::chrono::hours(24 * 365)};
  std::string why = "the allowed range";
};
Setting duration_setting(std::string section, std::string key, std::string flag, std::string help,
                         std::chrono::milliseconds* target, const DurationRange& range = {});
// "15s", "500ms", "2min": the shortest exact form.
std::string format_duration(std::chrono::milliseconds d);
// A non-empty path.
Setting path_setting(std::string section, std::string key, std::string flag, std::string help, std::string* target);

// How a list setting checks and combines the assignments of a file.
struct ListRules {
  bool absolute_paths = false;  // every item must start with '/'
  // false: each assignment adds to the list, as in systemd's unit files; true: each assignment
  // replaces the list, for lists whose default is not empty. Either way an empty one empties it.
  bool replace = false;
};
Setting list_setting(std::string section, std::string key, std::string flag, std::string help, std::string placeholder,
                     std::vector<std::string>* target, ListRules rules = {});

// All the settings of the daemon. Loading applies each value through its setting as it is read.
class ConfigSchema {
 public:
  // A section and key or a flag declared twice is a programming error: std::logic_error.
  void add(Setting setting);
  const std::vector<Setting>& settings() const { return settings_; }

  // Parses one file: a regular file of at most kMaxConfigFileBytes, or /dev/null, which is empty
  // (systemd's way to mask a file). Errors read "FILE: message" or "FILE:LINE: message"; a
  // missing file carries ENOENT in error_number().
  Status load_file(const std::string& path) const;
  // Parses `text` as the contents of a file called `name`, which errors name as they name a file
  // (load_file reads the file and calls this).
  Status load_text(std::string_view text, std::string_view name) const;
  // Loads `path` (missing is fine unless `required`), then `path`.d/*.conf in lexical order.
  Status load(const std::string& path, bool required) const;

 private:
  std::vector<Setting> settings_;
};

// What the command line says about the program besides its settings.
struct CommandLineInfo {
  std::string program;              // names the program in the usage line and in error messages
  std::string description;          // the text above the options
  std::string version;              // what --version prints
  std::string default_config_path;  // --config's default, which may be missing
  std::string footer;               // the text below the options
};

// Applies the configuration files and then the command line: --config FILE, --version, --help and
// every setting's flag. Returns the exit code when the program must stop (0 after --help or
// --version, 2 after a usage or configuration error, which goes to stderr naming the option or
// FILE:LINE), std::nullopt when it goes on.
std::optional<int> configure(const ConfigSchema& schema, int argc, char** argv, const CommandLineInfo& info);

// "15", "15s", "500ms", "2min" → milliseconds; must be positive. `out` is untouched on error.
Status parse_duration(std::string_view text, std::chrono::milliseconds* out);

}  // namespace hvvss
