# shellcheck shell=bash
# A backup (HOT_BACKUP, FREEZE, hold, THAW) is answered HV_S_OK; during the hold the VM's / and
# both data disks are frozen (FIFREEZE of each fails with EBUSY), and after THAW all are writable.
check_backup_freezes_everything() {
  sim_send HOT_BACKUP && sim_send FREEZE || return 1
  local frozen_ok=0
  all_mounts frozen "frozen during the hold" || frozen_ok=1
  sim_send THAW || return 1
  [ "$frozen_ok" -eq 0 ] || return 1
  all_mounts writable "writable after THAW"
}
