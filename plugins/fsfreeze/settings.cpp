#include "plugins/fsfreeze/settings.h"

namespace hvvss::fsfreeze {

void declare_settings(ConfigSchema& schema, Filters* filters) {
  schema.add(list_setting("Filesystems", "OnlyMounts", "--only-mounts",
                          "Freeze only these mount points (an allow-list); nothing else is ever frozen", "PATH",
                          &filters->only_mounts, {.absolute_paths = true}));
  schema.add(list_setting("Filesystems", "ExcludeMounts", "--exclude-mounts",
                          "Never freeze mount points matching these globs", "GLOB", &filters->exclude_globs));
  // An assignment replaces the list rather than adding to the default types.
  schema.add(list_setting("Filesystems", "FreezableTypes", "--freezable-types",
                          "Filesystem types frozen (default: ext4 ext3 ext2 xfs btrfs)", "TYPE",
                          &filters->freezable_types, {.replace = true}));
}

}  // namespace hvvss::fsfreeze
