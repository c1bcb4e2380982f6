// The writers plugin: declares the [Writers] settings (who besides root may register writers),
// and makes the writers participant, whose registry it hands to the agent's D-Bus service.
#pragma once

#include "agent/plugin.h"

#include <memory>

namespace hvvss::writers {

std::unique_ptr<Plugin> make_plugin();

}  // namespace hvvss::writers
