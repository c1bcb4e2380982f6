# shellcheck shell=bash
# A RequiredBy= hook that hangs cannot push the FREEZE reply past the host's budget: the agent
# answers HV_E_FAIL in time (the simulator counts a late reply as a failure), stops the hook, and
# freezes nothing.
check_hanging_hook_keeps_the_budget() {
  install_hook hang RequiredBy After=hook-b.service TimeoutStartSec=120
  enable_hooks hang || return 1
  sim_send HOT_BACKUP && expect_veto || return 1
  note "FREEZE answered after $(grep '"event":"reply"' "$SIM_OUT" | tail -1 | sed -n 's/.*"latency_ms":\([0-9.]*\).*/\1/p') ms"
  all_mounts not_frozen "thawed after the hung hook" || return 1
  wait_for 30 inactive hook-hang.service || { why "hook-hang.service is still $(systemctl is-active hook-hang.service)"; return 1; }
  remove_hook hang
}
