# shellcheck shell=bash
# The agent pings the watchdog (WATCHDOG=1): systemd's WatchdogTimestamp moves on, while the same
# agent keeps running.
check_watchdog_pings_arrive() {
  [ -n "${WATCHDOG_STAMP:-}" ] || { why "check 32 recorded no watchdog timestamp"; return 1; }
  local usec
  usec=$(systemctl show -P WatchdogUSec "$AGENT")
  wait_for 45 watchdog_moved || { why "no watchdog ping within 45 s (WatchdogUSec=$usec)"; return 1; }
  [ "$(systemctl show -P MainPID "$AGENT")" = "$WATCHDOG_PID" ] || why "the agent was restarted meanwhile"
}
watchdog_moved() { [ "$(systemctl show -P WatchdogTimestampMonotonic "$AGENT")" -gt "$WATCHDOG_STAMP" ]; }
