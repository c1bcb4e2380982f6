// The agent's own settings, section [Agent]: the VSS channel, the runtime directory, the reply
// budget, the auto-thaw delay and the log level. Each plugin declares its own section next to
// these into the same ConfigSchema (see hvvss::fsfreeze::declare_settings).
#pragma once

#include "agent/config.h"

#include <spdlog/spdlog.h>
#include <chrono>
#include <string>
#include <string_view>

namespace hvvss {

inline constexpr std::string_view kDefaultConfigPath = "/etc/hv-vss/agent.conf";

struct AgentSettings {
  std::string device = "/dev/vmbus/hv_vss";
  std::string runtime_dir = "/run/hv-vss-agent";
  std::chrono::milliseconds reply_budget{15000};
  std::chrono::milliseconds auto_thaw{60000};
  spdlog::level::level_enum log_level = spdlog::level::info;

  // Adds the [Agent] settings, bound to this object, which must outlive the schema's use.
  void declare(ConfigSchema& schema);
};

}  // namespace hvvss
