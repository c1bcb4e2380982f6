// Fuzzes the configuration parser with the daemon's real schema: the agent's [Agent] settings and
// the fsfreeze plugin's [Filesystems]. Any text either loads, leaving every setting within its
// rules, or fails with an error that names the file and, when it names a line, one the text has.
#include "agent/agent_settings.h"
#include "agent/config.h"
#include "plugins/fsfreeze/settings.h"
#include "tests/fuzz/fuzz_check.h"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss {
namespace {

constexpr std::string_view kName = "fuzz.conf";

// The line an error names ("fuzz.conf:LINE: ..."), 0 when it names none.
size_t error_line(const std::string& message) {
  size_t line = 0;
  for (size_t i = kName.size() + 1; i < message.size() && std::isdigit(static_cast<unsigned char>(message[i])); ++i)
    line = line * 10 + static_cast<size_t>(message[i] - '0');
  return line;
}

bool plain_words(const std::vector<std::string>& list) {
  return std::all_of(list.begin(), list.end(), [](const std::string& item) {
    return !item.empty() &&
           std::none_of(item.begin(), item.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  });
}

}  // namespace
}  // namespace hvvss

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hvvss;
  AgentSettings agent;
  fsfreeze::Filters filters;
  ConfigSchema schema;
  agent.declare(schema);
  fsfreeze::declare_settings(schema, &filters);
  std::string_view text(reinterpret_cast<const char*>(data), size);

  Status loaded = schema.load_text(text, kName);
  if (!loaded) {
    const std::string& message = loaded.message();
    FUZZ_CHECK(message.starts_with(std::string(kName) + ":"), message);
    size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    FUZZ_CHECK(error_line(message) <= lines, message);
    return 0;
  }
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  FUZZ_CHECK(!agent.device.empty() && !agent.runtime_dir.empty());
  FUZZ_CHECK(agent.reply_budget.count() > 0 && agent.auto_thaw.count() > 0);
  FUZZ_CHECK(plain_words(filters.only_mounts) && plain_words(filters.exclude_globs) &&
             plain_words(filters.freezable_types));
  FUZZ_CHECK(std::all_of(filters.only_mounts.begin(), filters.only_mounts.end(),
                         [](const std::string& path) { return path.starts_with('/'); }));
  return 0;
}
