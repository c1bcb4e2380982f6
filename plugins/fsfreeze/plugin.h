// The fsfreeze plugin: declares the [Filesystems] settings and makes the one filesystem
// participant (FsFreeze behind the blocking adapter), required and in the filesystem layer.
#pragma once

#include "agent/plugin.h"

#include <memory>

namespace hvvss::fsfreeze {

std::unique_ptr<Plugin> make_plugin();

}  // namespace hvvss::fsfreeze
