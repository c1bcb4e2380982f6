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
# When (s since the epoch: the guest has no network, so no clock steps) this boot's journal has a
# line of UNIT matching PATTERN: the first, or with "last" the last.
logged_at() {
  journalctl -b -u "$1" -o short-unix | grep -- "$2" | sed -n 's/^\([0-9.]*\) .*/\1/p' |
    if [ "${3:-}" = last ]; then tail -1; else head -1; fi
}
logged() { [ -n "$(logged_at "$1" "$2")" ]; }
before() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a != "" && b != "" && a < b)}'; }
# The writer's longest wait: the start times (s since the epoch) of the two consecutive INSERTs
# furthest apart. A row's time is its statement's start, so the first of the two is the INSERT
# that waited for the lock and the second the one after it.
longest_wait() {
  db "SELECT UNIX_TIMESTAMP(prev), UNIX_TIMESTAMP(at) FROM (SELECT at, LAG(at) OVER (ORDER BY id) AS prev
      FROM e2e.t) g WHERE prev IS NOT NULL ORDER BY TIMESTAMPDIFF(MICROSECOND, prev, at) DESC LIMIT 1"
}
# offset T ORIGIN: "+S.SSS s", T relative to ORIGIN.
offset() { awk -v t="$1" -v o="$2" 'BEGIN{printf "%+.3f s", t - o}'; }

check_mariadb_quiesced_during_freeze() {
  systemctl start mariadb.service || { why "mariadb.service did not start"; return 1; }
  db "CREATE DATABASE e2e; CREATE TABLE e2e.t (id INT AUTO_INCREMENT PRIMARY KEY,
    at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB" ||
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
  local locked frozen thawed unlocked waited resumed
  locked=$(logged_at mariadb-quiesce.service " lock: confirmed" last)
  frozen=$(logged_at "$AGENT" "txn=$txn op=FREEZE .*replied HV_S_OK")
  thawed=$(logged_at "$AGENT" "txn=$txn op=THAW .*replied HV_S_OK")
  unlocked=$(logged_at mariadb-quiesce.service "unlock: BACKUP STAGE END" last)
  read -r waited resumed <<<"$(longest_wait)"
  note "txn $txn: $after rows before THAW, $(rows) after; the writer waited from $(date -u -d "@$waited" +%T.%3N)" \
    "to $(offset "$resumed" "$waited"); lock confirmed $(offset "$locked" "$waited"), FREEZE answered" \
    "$(offset "$frozen" "$waited"), THAW answered $(offset "$thawed" "$waited"), unlock sent $(offset "$unlocked" "$waited")"
  if ! before "$locked" "$frozen" || ! before "$thawed" "$unlocked"; then
    why "the lock was not held from before the FREEZE reply to after the THAW reply"
    return 1
  fi
  # The freeze window lies inside the writer's wait: no row was written while anything was frozen.
  if ! before "$waited" "$frozen" || ! before "$thawed" "$resumed"; then
    why "the writer's longest wait does not cover FREEZE answered to THAW answered"
    return 1
  fi
  systemctl disable -q mariadb-quiesce.service
  systemctl stop mariadb.service
}
