# shellcheck shell=bash
# MariaDB with the shipped example hook (hv-vss-hold mariadb, BACKUP STAGE BLOCK_COMMIT): a client
# inserting a row every 10 ms waits for the backup lock through the freeze window — the lock is
# confirmed before the agent answers FREEZE and released after it answers THAW (that hooks finish
# before the first FIFREEZE is unit-hooks-run-in-order's) — and goes on without an error.
db() { mariadb --batch --skip-column-names -e "$1"; }
rows() { db "SELECT COUNT(*) FROM e2e.t"; }
rows_above() { [ "$(rows)" -gt "$1" ]; }
# SHOW PROCESSLIST, not information_schema: that one builds a temporary table in /tmp, on the
# frozen root filesystem, and would wait for the thaw.
insert_waits_for_backup_lock() { db "SHOW FULL PROCESSLIST" | grep -q "Waiting for backup lock.*INSERT INTO e2e.t"; }
# When (CLOCK_MONOTONIC, s) this boot's journal first has a line of UNIT matching PATTERN.
logged_at() {
  journalctl -b -u "$1" -o short-monotonic | grep -m1 -- "$2" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'
}
logged() { [ -n "$(logged_at "$1" "$2")" ]; }
before() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a != "" && b != "" && a < b)}'; }

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
  wait_for 10 insert_waits_for_backup_lock || held=1
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
  # The lock was confirmed before the FREEZE reply, and given back after the THAW reply.
  wait_for 20 logged mariadb-quiesce.service "unlock: confirmed" || { why "no unlock in the hook's journal"; return 1; }
  local locked frozen thawed unlocked
  locked=$(journalctl -b -u mariadb-quiesce.service -o short-monotonic | grep "lock: confirmed" | grep -v unlock |
    tail -1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')
  frozen=$(logged_at "$AGENT" "txn=$txn op=FREEZE .*replied HV_S_OK")
  thawed=$(logged_at "$AGENT" "txn=$txn op=THAW .*replied HV_S_OK")
  unlocked=$(journalctl -b -u mariadb-quiesce.service -o short-monotonic | grep "unlock: BACKUP STAGE END" |
    tail -1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')
  if ! before "$locked" "$frozen" || ! before "$thawed" "$unlocked"; then
    why "journal times: locked $locked, FREEZE answered $frozen, THAW answered $thawed, unlock sent $unlocked"
    return 1
  fi
  note "txn $txn: $after rows before THAW, $(rows) after; inserts waited for the backup lock during the hold"
  systemctl disable -q mariadb-quiesce.service
  systemctl stop mariadb.service
}
