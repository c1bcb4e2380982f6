# shellcheck shell=bash
# An agent killed (SIGKILL) while everything is frozen is restarted by systemd, and its successor
# thaws / and the data disks, within 60 s, and registers again.
check_kill_while_frozen_thaws() {
  local pid regs
  pid=$(systemctl show -P MainPID "$AGENT")
  regs=$(registrations)
  sim_send HOT_BACKUP && sim_send FREEZE || return 1
  if ! all_mounts frozen "frozen before the kill"; then
    local seen=$WHY
    sim_send THAW  # leaves nothing frozen for the checks that follow
    why "$seen"
    return 1
  fi
  local start writers=() m
  start=$(now)
  systemctl kill -s KILL "$AGENT" || { why "systemctl kill failed"; return 1; }
  for m in "${MOUNTS[@]}"; do
    touch "$m/.e2e-kill-probe" &
    writers+=($!)
  done
  wait_for 60 all_exited "${writers[@]}" || { why "still frozen 60 s after the kill"; return 1; }
  note "thawed $(since "$start") s after the kill"
  rm -f /.e2e-kill-probe /mnt/ext4/.e2e-kill-probe /mnt/xfs/.e2e-kill-probe
  wait_for 30 sim_count_above registered "$regs" || { why "the successor did not register"; return 1; }
  local new
  new=$(systemctl show -P MainPID "$AGENT")
  if [ "$(systemctl is-active "$AGENT")" != active ] || [ "$new" = "$pid" ] || [ "$new" = 0 ]; then
    why "the agent was not restarted (MainPID $pid -> $new, $(systemctl is-active "$AGENT"))"
  fi
}
all_exited() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done
  return 0
}
