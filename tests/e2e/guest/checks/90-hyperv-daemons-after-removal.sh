# shellcheck shell=bash
# Once the package is removed, hyperv-daemons' VSS daemon can have the device again: its unit
# starts and the upstream daemon registers with /dev/vmbus/hv_vss.
check_hyperv_daemons_after_removal() {
  remove_package || { why "removing the package failed"; return 1; }
  [ ! -e /usr/sbin/hv-vss-agent ] || { why "the agent is still installed"; return 1; }
  local unit regs
  unit=$(systemctl list-unit-files --no-legend 'hv-vss-daemon.service' 'hyperv-daemons.hv-vss-daemon.service' |
    awk '{print $1; exit}')
  [ -n "$unit" ] || { why "hyperv-daemons ships no VSS daemon unit"; return 1; }
  regs=$(registrations)
  systemctl start "$unit" || { why "systemctl start $unit failed"; return 1; }
  wait_for 30 sim_count_above registered "$regs" || {
    why "$unit is $(systemctl is-active "$unit") but did not register: $(journalctl -q -b -u "$unit" -o cat | tail -3)"
    return 1
  }
  note "$unit is $(systemctl is-active "$unit") and registered with the device"
  systemctl stop "$unit"
}
