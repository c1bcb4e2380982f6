# shellcheck shell=bash
# The unit arms systemd's watchdog; check 65 sees the agent's pings arrive.
check_watchdog_is_armed() {
  local usec
  usec=$(systemctl show -P WatchdogUSec "$AGENT")
  note "WatchdogUSec: $usec"
  case $usec in '' | 0 | infinity) why "no watchdog: WatchdogUSec=$usec"; return 1 ;; esac
  # For check 65: the agent that must ping, and when it last did.
  # shellcheck disable=SC2034  # both are read by check 65
  WATCHDOG_PID=$(systemctl show -P MainPID "$AGENT") WATCHDOG_STAMP=$(systemctl show -P WatchdogTimestampMonotonic "$AGENT")
}
