// The plugins compiled into hv-vss-agent, in the order their participants are registered.
#pragma once

#include "agent/plugin.h"

#include <memory>
#include <vector>

namespace hvvss {

std::vector<std::unique_ptr<Plugin>> builtin_plugins();

}  // namespace hvvss
