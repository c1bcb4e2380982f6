# shellcheck shell=bash
# A filesystem mounted after the agent started is frozen by the next backup.
check_late_mount_is_frozen() {
  truncate -s 64M "$E2E/late.img" || why "truncate failed" || return 1
  mkfs.ext4 -q -F "$E2E/late.img" || why "mkfs.ext4 failed" || return 1
  mkdir -p /mnt/late
  mount -o loop "$E2E/late.img" /mnt/late || why "could not mount the late filesystem" || return 1
  sim_send HOT_BACKUP && sim_send FREEZE || return 1
  local was_frozen=0
  frozen /mnt/late || was_frozen=1
  sim_send THAW || return 1
  [ "$was_frozen" -eq 0 ] || { why "/mnt/late was not frozen during the hold"; return 1; }
  writable /mnt/late || why "/mnt/late is not writable after THAW"
}
