# shellcheck shell=bash
# A filesystem mounted after the agent started is frozen by the next backup.
check_late_mount_is_frozen() {
  late_mounts_frozen /mnt/late
}
