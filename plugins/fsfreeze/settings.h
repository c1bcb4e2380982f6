// The fsfreeze plugin's settings, section [Filesystems]: which mount points a snapshot may freeze
// (an allow-list, exclusion globs, the freezable filesystem types). The plugin declares them into
// the daemon's ConfigSchema; the agent itself knows nothing of them.
#pragma once

#include "agent/config.h"
#include "plugins/fsfreeze/targets.h"

namespace hvvss::fsfreeze {

// Adds the [Filesystems] settings, bound to `filters`, which must outlive the schema's use.
void declare_settings(ConfigSchema& schema, Filters* filters);

}  // namespace hvvss::fsfreeze
