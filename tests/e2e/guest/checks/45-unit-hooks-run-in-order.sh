# shellcheck shell=bash
# Hook units take part in a backup: hook-a (RequiredBy=) and hook-b (WantedBy=, After=hook-a) start
# in that order before anything is frozen (each creates a file on the ext4 disk, which would block
# once it is frozen), stay active through the hold, and stop in reverse after the thaw. Their lines
# reach the journal with the transaction id, and the agent reports each as a step (in hv-vssctl and
# in its own journal lines).
HOOKS_LOG=$E2E/hooks.log

# install_hook NAME INSTALL [UNIT-LINE...]: a oneshot hook whose start and stop run hook.sh.
install_hook() {
  local name=$1 install=$2 line
  shift 2
  {
    printf '[Unit]\nDescription=e2e hook %s\nPartOf=hv-vss-quiesce.target\nBefore=hv-vss-quiesce.target\n' "$name"
    for line in "$@"; do echo "$line"; done
    printf '[Service]\nType=oneshot\nRemainAfterExit=yes\nEnvironmentFile=-/run/hv-vss-agent/transaction.env\n'
    printf 'ExecStart=/bin/sh %s/hook.sh %s start\nExecStop=/bin/sh %s/hook.sh %s stop\n' "$E2E" "$name" "$E2E" "$name"
    printf '[Install]\n%s=hv-vss-quiesce.target\n' "$install"
  } >"/etc/systemd/system/hook-$name.service"
}
# A hook's work: a line in the journal and in HOOKS_LOG; its start touches the ext4 disk. HOOK_FAIL
# and HOOK_HANG, names of hooks, make those fail or hang on start.
write_hook_script() {
  cat >"$E2E/hook.sh" <<'EOS'
echo "hook $1 $2 txn=$HV_VSS_TRANSACTION action=$HV_VSS_ACTION"
echo "$1 $2 $HV_VSS_TRANSACTION" >>/run/e2e/hooks.log
if [ "$2" = start ]; then
  case $1 in fail*) exit 1 ;; hang*) exec sleep infinity ;; esac
  touch "/mnt/ext4/.hook-$1"
fi
EOS
}
# enable_hooks NAME...: hook-NAME.service enabled, systemd reloaded first.
enable_hooks() {
  systemctl daemon-reload || { why "daemon-reload failed"; return 1; }
  local name
  for name in "$@"; do systemctl enable -q "hook-$name.service" || { why "cannot enable hook-$name.service"; return 1; }; done
}
remove_hook() {
  systemctl disable -q --now "hook-$1.service"
  rm -f "/etc/systemd/system/hook-$1.service"
  systemctl daemon-reload
}
hook_events() { cut -d' ' -f1,2 "$HOOKS_LOG" | paste -sd, -; }
hook_events_are() { [ "$(hook_events)" = "$1" ]; }
agent_txn() { busctl get-property io.github.hvvss.Agent1 /io/github/hvvss/Agent1 io.github.hvvss.Agent1 TransactionId | cut -d' ' -f2; }
# The last transaction's steps, as hv-vssctl status prints them, include PATTERN.
last_steps_show() { hv-vssctl status | grep -Eq "$1"; }

check_unit_hooks_run_in_order() {
  write_hook_script
  install_hook a RequiredBy
  install_hook b WantedBy After=hook-a.service
  enable_hooks a b || return 1
  : >"$HOOKS_LOG"
  sim_send HOT_BACKUP && sim_send FREEZE || return 1
  local during frozen_ok=0
  during=$(hook_events)
  all_mounts frozen "frozen during the hold" || frozen_ok=1
  sim_send THAW || return 1
  [ "$frozen_ok" -eq 0 ] || return 1
  [ "$during" = "a start,b start" ] || { why "during the hold the hooks had done: $during"; return 1; }
  wait_for 20 hook_events_are "a start,b start,b stop,a stop" ||
    { why "hook events after THAW: $(hook_events)"; return 1; }
  local txn
  txn=$(agent_txn)
  [ "$(cut -d' ' -f3 "$HOOKS_LOG" | sort -u)" = "$txn" ] ||
    { why "hooks saw transaction(s) $(cut -d' ' -f3 "$HOOKS_LOG" | sort -u | paste -sd' ') , the agent $txn"; return 1; }
  wait_for 20 journal_has hook-a.service "hook a start txn=$txn" || { why "no 'hook a start txn=$txn' in the journal"; return 1; }
  wait_for 20 last_steps_show "units/hook-b.service +freeze +ok" || { why "hv-vssctl status shows no hook-b step"; return 1; }
  wait_for 20 agent_says "txn=$txn op=THAW .*units/hook-a.service thaw: ok" ||
    { why "the agent's journal does not name hook-a's thaw"; return 1; }
  note "txn $txn: $(hook_events)"
}
journal_has() { journalctl -b -u "$1" -o cat | grep -qF "$2"; }
agent_says() { journalctl -b -u "$AGENT" -o cat | grep -q "$1"; }
