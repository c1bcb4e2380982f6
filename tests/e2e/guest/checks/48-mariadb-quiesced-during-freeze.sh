# shellcheck shell=bash
# MariaDB with the shipped example hook (hv-vss-hold mariadb, BACKUP STAGE BLOCK_COMMIT): a client
# inserting a row every 10 ms waits for the backup lock through the freeze window — the hook is
# done before the filesystems freeze and undone after they thaw — and goes on without an error.
db() { mariadb --batch --skip-column-names -e "$1"; }
rows() { db "SELECT COUNT(*) FROM e2e.t"; }
rows_above() { [ "$(rows)" -gt "$1" ]; }
insert_waits_for_backup_lock() {
  [ "$(db "SELECT COUNT(*) FROM information_schema.PROCESSLIST
           WHERE INFO LIKE 'INSERT INTO e2e.t%' AND STATE = 'Waiting for backup lock'")" -gt 0 ]
}
# The line numbers, in this boot's journal of the agent, of transaction TXN's line matching PATTERN.
agent_line() { journalctl -b -u "$AGENT" -o cat | grep -n "^\[txn=$1 .*$2" | head -1 | cut -d: -f1; }

check_mariadb_quiesced_during_freeze() {
  systemctl start mariadb.service || { why "mariadb.service did not start"; return 1; }
  db "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB" ||
    { why "cannot create the table"; return 1; }
  if ! cp /usr/share/doc/hv-vss-agent/examples/mariadb-quiesce.service /etc/systemd/system/ ||
    ! systemctl daemon-reload || ! systemctl enable -q mariadb-quiesce.service; then
    why "cannot enable the example hook"
    return 1
  fi
  # One client session, one INSERT every 10 ms, until its input is closed.
  mkfifo "$E2E/inserts"
  mariadb --batch <"$E2E/inserts" >"$E2E/inserter.out" 2>"$E2E/inserter.err" &
  local client=$!
  { while :; do echo "INSERT INTO e2e.t () VALUES ();"; sleep 0.01; done; } >"$E2E/inserts" &
  local feeder=$!
  wait_for 30 rows_above 20 || { why "the inserts did not start"; kill "$feeder"; return 1; }

  local txn held=0 frozen_ok=0
  if ! sim_send HOT_BACKUP || ! sim_send FREEZE; then
    kill "$feeder"
    return 1
  fi
  txn=$(agent_txn)
  wait_for 20 insert_waits_for_backup_lock || held=1
  local before after
  before=$(rows)
  all_mounts frozen "frozen during the hold" || frozen_ok=1
  after=$(rows)
  sim_send THAW || { kill "$feeder"; return 1; }
  wait_for 30 rows_above "$after" || { why "the inserts did not resume after THAW"; kill "$feeder"; return 1; }
  kill "$feeder"
  wait "$client" || { why "the inserting client failed: $(head -3 "$E2E/inserter.err")"; return 1; }
  [ "$held" -eq 0 ] || { why "no INSERT waited for the backup lock during the hold"; return 1; }
  [ "$frozen_ok" -eq 0 ] || return 1
  [ "$before" = "$after" ] || { why "rows were committed during the hold ($before, then $after)"; return 1; }
  [ ! -s "$E2E/inserter.err" ] || { why "the inserting client said: $(head -3 "$E2E/inserter.err")"; return 1; }
  # The engine's order, from the agent's own lines: the hook before the first freeze, after the last thaw.
  local hook_frozen fs_frozen fs_thawed hook_thawed
  wait_for 20 agent_line_exists "$txn" 'units/mariadb-quiesce.service thaw' || { why "no hook thaw line for txn $txn"; return 1; }
  hook_frozen=$(agent_line "$txn" 'units/mariadb-quiesce.service freeze: ok')
  fs_frozen=$(agent_line "$txn" 'fsfreeze freeze: ok')
  fs_thawed=$(agent_line "$txn" 'fsfreeze thaw: ok')
  hook_thawed=$(agent_line "$txn" 'units/mariadb-quiesce.service thaw: ok')
  if ! [ "${hook_frozen:-0}" -gt 0 ] || ! [ "${fs_frozen:-0}" -gt "$hook_frozen" ] ||
    ! [ "${fs_thawed:-0}" -gt "$fs_frozen" ] || ! [ "${hook_thawed:-0}" -gt "$fs_thawed" ]; then
    why "journal order (lines): hook frozen $hook_frozen, fs frozen $fs_frozen, fs thawed $fs_thawed, hook thawed $hook_thawed"
    return 1
  fi
  note "txn $txn: $after rows before THAW, $(rows) after; inserts waited for the backup lock during the hold"
  systemctl disable -q mariadb-quiesce.service
  systemctl stop mariadb.service
}
agent_line_exists() { [ -n "$(agent_line "$1" "$2")" ]; }
