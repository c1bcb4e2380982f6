# shellcheck shell=bash
# The agent tells systemd what it is doing (STATUS=), and systemctl status shows it.
check_status_line_is_shown() {
  local text
  text=$(systemctl show -P StatusText "$AGENT")
  note "StatusText: $text"
  [ -n "$text" ] || { why "StatusText is empty"; return 1; }
  systemctl status --no-pager "$AGENT" | grep -qF "Status: \"$text\"" || why "systemctl status does not show it"
}
