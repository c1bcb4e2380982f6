// A plugin as the daemon sees it: a settings section it declares in the configuration schema,
// and the participants it makes once the configuration is read. The daemon knows plugins only
// through this interface; plugins/builtin.h lists the ones compiled in.
#pragma once

#include "agent/participant.h"
#include "agent/status.h"

#include <systemd/sd-event.h>
#include <memory>
#include <string>
#include <vector>

namespace hvvss {

class BusService;
class ConfigSchema;

// What a plugin may use to make its participants.
struct PluginContext {
  sd_event* loop = nullptr;
  std::string runtime_dir;    // for records that must survive the agent (tmpfs, never frozen)
  BusService* bus = nullptr;  // the agent's D-Bus service, for plugins that serve applications
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view name() const = 0;
  // Adds the plugin's settings, bound to its own variables.
  virtual void declare(ConfigSchema& schema) = 0;
  virtual Status make(const PluginContext& context, std::vector<std::unique_ptr<Participant>>* participants) = 0;
};

}  // namespace hvvss
