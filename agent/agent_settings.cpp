#include "agent/agent_settings.h"

#include "agent/log.h"

namespace hvvss {

void AgentSettings::declare(ConfigSchema& schema) {
  schema.add(path_setting("Agent", "Device", "--device",
                          "VSS channel: the kernel's character device, or a simulator's SOCK_SEQPACKET socket",
                          &device));
  schema.add(path_setting("Agent", "RuntimeDirectory", "--runtime-dir",
                          "Directory for the intent record (must not be on a filesystem we freeze)", &runtime_dir));
  // The kernel waits 30 s for the reply to HOT_BACKUP and THAW (PROTOCOL.md 3.2).
  schema.add(
      duration_setting("Agent", "ReplyBudgetSec", "--reply-budget",
                       "Every request is answered within this time (default 15s; 1s to 30s)", &reply_budget,
                       {std::chrono::seconds(1), std::chrono::seconds(30), "what the kernel waits for a reply"}));
  // Shorter, and a host's ordinary snapshot would be thawed under it.
  schema.add(duration_setting("Agent", "AutoThawSec", "--auto-thaw",
                              "Thaw on our own if no THAW arrives this long after a freeze (default 60s; at least 10s)",
                              &auto_thaw,
                              {std::chrono::seconds(10), std::chrono::hours(24), "what a host's snapshot may take"}));
  schema.add(single_setting("Agent", "LogLevel", "--log-level", "trace, debug, info, warning, error, critical or off",
                            "LEVEL", [this](const std::string& value) {
                              auto level = logging::parse_level(value);
                              if (!level) return Status::errorf("unknown log level '{}'", value);
                              log_level = *level;
                              return Status::ok();
                            }));
}

}  // namespace hvvss
