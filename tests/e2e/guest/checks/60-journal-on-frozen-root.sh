# shellcheck shell=bash
# With the persistent journal on the frozen /, journald blocks, yet the agent keeps answering
# (its logging never waits), and what it logged while frozen is in the journal after the thaw.
check_journal_on_frozen_root() {
  [ -d "/var/log/journal/$(cat /etc/machine-id)" ] || { why "the journal is not persistent"; return 1; }
  local cursor
  cursor=$(journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
  sim_send HOT_BACKUP && sim_send FREEZE || return 1
  frozen / || { why "/ is not frozen"; sim_send THAW; return 1; }
  local token="logged while / was frozen ($RANDOM$RANDOM)"
  logger -t hv-vss-e2e "$token"
  sim_send THAW || return 1
  journalctl --sync
  wait_for 30 agent_logged_after "$cursor" 'op=THAW.*transaction finished' || {
    why "the agent's THAW lines are not in the journal after the thaw"
    return 1
  }
  note "$(journalctl -q --after-cursor "$cursor" -u "$AGENT" --grep 'op=THAW' -o cat | tail -2 | tr '\n' ' ')"
  wait_for 30 in_journal "$token" || why "the line logger sent while / was frozen is missing"
}
in_journal() { journalctl -q -b -o cat | grep -qF "$1"; }
agent_logged_after() { journalctl -q --after-cursor "$1" -u "$AGENT" -o cat | grep -qE "$2"; }
