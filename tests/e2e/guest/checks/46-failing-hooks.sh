# shellcheck shell=bash
# A RequiredBy= hook that fails vetoes the snapshot: FREEZE is answered HV_E_FAIL, nothing is
# frozen, and the hooks that had started are stopped again. A WantedBy= hook that fails is
# reported as a failed step, and the backup goes on.
not_frozen() { ! frozen "$1"; }
# expect_veto: FREEZE is answered HV_E_FAIL. One that succeeded anyway is thawed, so that the
# checks after this one do not run on frozen filesystems.
expect_veto() {
  sim_send FREEZE HV_E_FAIL && return 0
  local saw=$WHY
  [ "$REPLY" = HV_S_OK ] && sim_send THAW
  why "$saw"
}
inactive() { ! systemctl -q is-active "$1"; }
check_failing_hooks() {
  install_hook fail-required RequiredBy After=hook-b.service
  enable_hooks fail-required || return 1
  : >"$HOOKS_LOG"
  sim_send HOT_BACKUP && expect_veto || return 1
  all_mounts not_frozen "thawed after the veto" || return 1
  local hook
  for hook in hook-a.service hook-b.service; do
    wait_for 20 inactive "$hook" || { why "$hook was not stopped after the veto: $(hook_events)"; return 1; }
  done
  note "veto: $(hook_events)"
  remove_hook fail-required

  install_hook fail-wanted WantedBy After=hook-b.service
  enable_hooks fail-wanted || return 1
  sim_send HOT_BACKUP && sim_send FREEZE || return 1
  local frozen_ok=0
  all_mounts frozen "frozen despite the failed WantedBy= hook" || frozen_ok=1
  sim_send THAW || return 1
  [ "$frozen_ok" -eq 0 ] || return 1
  wait_for 20 last_steps_show "units/hook-fail-wanted.service +freeze +failed" ||
    { why "hv-vssctl status does not report the failed WantedBy= hook"; return 1; }
  remove_hook fail-wanted
}
