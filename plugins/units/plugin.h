// The unit hooks plugin: declares the [Units] settings (the quiesce target), and makes the units
// participant, whose systemd client it hands to the agent's D-Bus service as a bus user.
#pragma once

#include "agent/plugin.h"

#include <memory>

namespace hvvss::units {

std::unique_ptr<Plugin> make_plugin();

}  // namespace hvvss::units
