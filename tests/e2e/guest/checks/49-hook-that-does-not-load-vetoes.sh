# shellcheck shell=bash
# A RequiredBy= hook whose unit does not load (a oneshot without ExecStart=: LoadState=bad-setting)
# fails the host's HOT_BACKUP check, before anything is quiesced or frozen.
check_hook_that_does_not_load_vetoes() {
  printf '[Unit]\nDescription=e2e broken hook\nPartOf=hv-vss-quiesce.target\nBefore=hv-vss-quiesce.target\n[Service]\nType=oneshot\n[Install]\nRequiredBy=hv-vss-quiesce.target\n' \
    >/etc/systemd/system/hook-broken.service
  enable_hooks broken || return 1
  local state
  state=$(systemctl show -P LoadState hook-broken.service)
  [ "$state" = bad-setting ] || { why "the broken hook's LoadState is $state"; remove_hook broken; return 1; }
  local rc=0
  sim_send HOT_BACKUP HV_E_FAIL || rc=1
  remove_hook broken
  [ "$rc" -eq 0 ] || return 1
  wait_for 20 last_steps_show "units/hook-broken.service +check +failed" ||
    { why "hv-vssctl status does not report the hook that does not load"; return 1; }
}
