# shellcheck shell=bash
# Helpers for the guest checks. Everything they write goes to /run (tmpfs): the root filesystem
# is frozen during some checks, and a write there would block until the thaw.
E2E=/run/e2e
PAYLOAD=$E2E/payload
export TMPDIR=$E2E/tmp  # here-documents and mktemp must not touch a frozen /
mkdir -p "$TMPDIR"
MOUNTS=(/ /mnt/ext4 /mnt/xfs)  # what the backup checks expect frozen
SIM_OUT=$E2E/sim.out SIM_IN=$E2E/sim.in SIM_PID=''
AGENT=hv-vss-agent.service

# why TEXT: what a check saw instead of the behaviour it names; returns 1, so `cmd || why ...` fails.
why() {
  WHY="$*"
  export WHY
  return 1
}
note() { echo "    $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN{printf "%.1f", a-b}'; }
uptime_of() { awk -v us="$(systemctl show -P ActiveEnterTimestampMonotonic "$1")" 'BEGIN{printf "%.1fs", us/1e6}'; }

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds (0) or time is up (1).
wait_for() {
  local until
  until=$(awk -v a="$(now)" -v b="$1" 'BEGIN{print a+b}')
  shift
  until "$@"; do
    awk -v a="$(now)" -v b="$until" 'BEGIN{exit !(a<b)}' || return 1
    sleep 0.1
  done
}

# The project's package: the .deb in the payload.
install_package() {
  apt-get install -y -q --no-install-recommends "$PAYLOAD"/package/hv-vss-agent_*.deb
}
remove_package() {
  apt-get purge -y -q hv-vss-agent
}

# The simulator plays the host through /dev/vmbus/hv_vss (CUSE), one request per line on its stdin.
sim_start() {
  rm -f "$SIM_IN" "$SIM_OUT"
  mkfifo "$SIM_IN"
  exec 7<>"$SIM_IN"  # held open: the simulator sees EOF only when sim_stop closes it
  hv-vss-sim --cuse stdin --wait-daemon 900 --freeze-timeout 60 --timeout 30 <"$SIM_IN" >"$SIM_OUT" 2>"$E2E/sim.err" 7>&- &
  SIM_PID=$!
}
sim_stop() {  # closes the simulator's stdin; it then reports its verdict and exits
  [ -n "$SIM_PID" ] || return 0
  exec 7>&-
  local rc=0
  wait_for 60 sim_exited || { kill "$SIM_PID"; rc=1; }
  wait "$SIM_PID" || rc=$?
  SIM_PID=''
  return "$rc"
}
sim_exited() { ! kill -0 "$SIM_PID" 2>/dev/null; }
sim_count() { grep -c "\"event\":\"$1\"" "$SIM_OUT"; }
sim_count_above() { [ "$(sim_count "$1")" -gt "$2" ]; }
# sim_send OP [STATUS]: sends one request and waits for its reply, which must be STATUS (HV_S_OK);
# REPLY is the reply's status.
sim_send() {
  local before expected=${2:-HV_S_OK}
  before=$(sim_count reply)
  echo "$1 $expected" >&7
  REPLY=''
  wait_for 60 sim_count_above reply "$before" || { why "no reply to $1 within 60 s"; return 1; }
  REPLY=$(grep '"event":"reply"' "$SIM_OUT" | tail -1 | sed -n 's/.*"status":"\([^"]*\)".*/\1/p')
  [ "$REPLY" = "$expected" ] || { why "$1 was answered ${REPLY:-nothing}, not $expected"; return 1; }
}
# The agent's unit's overall exposure level by `systemd-analyze security` (0.0 best, 10.0 worst).
exposure() {
  systemd-analyze security "$AGENT" 2>/dev/null | awk '/Overall exposure level/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]$/) print $i}'
}
# Registrations of a daemon with the simulated device so far.
registrations() { sim_count registered; }

# frozen MOUNT: true if someone else holds MOUNT frozen: FIFREEZE then fails with EBUSY. Should it
# succeed instead, the probe itself froze the filesystem, and thaws it at once.
frozen() {
  local out
  if out=$(fsfreeze -f "$1" 2>&1); then
    fsfreeze -u "$1"
    return 1
  fi
  [[ $out == *busy* ]]
}
# writable MOUNT [SECONDS]: a file can be created on MOUNT within SECONDS (10); a write to a frozen
# filesystem blocks until it is thawed.
writable() {
  local file=$1/.e2e-probe-$RANDOM
  touch "$file" & local pid=$!
  wait_for "${2:-10}" exited "$pid" || return 1
  wait "$pid" && rm -f "$file"
}
exited() { ! kill -0 "$1" 2>/dev/null; }
# Every mount of MOUNTS for which PREDICATE holds; `why` names the others.
all_mounts() {  # PREDICATE DESCRIPTION
  local m bad=()
  for m in "${MOUNTS[@]}"; do "$1" "$m" || bad+=("$m"); done
  [ ${#bad[@]} -eq 0 ] || { why "not $2: ${bad[*]}"; return 1; }
}

# Whatever happens, the VM must not stay frozen: the results still have to be written.
thaw_everything() {
  local m
  for m in /mnt/* /; do fsfreeze -u "$m" 2>/dev/null; done
  return 0
}

# late_mounts_frozen DIR...: a small ext4 filesystem mounted at each DIR now, after the agent
# started, is frozen during the next backup and writable after it; each is unmounted again.
late_mounts_frozen() {
  local dir n=0 rc=0 mounted=() missed=()
  for dir in "$@"; do
    n=$((n + 1))
    if ! { truncate -s 16M "$E2E/late-$n.img" && mkfs.ext4 -q -F "$E2E/late-$n.img" && mkdir -p "$dir" &&
      mount -o loop "$E2E/late-$n.img" "$dir"; }; then
      why "could not mount a late filesystem on $dir"
      rc=1
      break
    fi
    mounted+=("$dir")
  done
  if [ "$rc" -eq 0 ]; then
    sim_send HOT_BACKUP && sim_send FREEZE || rc=1
    if [ "$rc" -eq 0 ]; then
      for dir in "${mounted[@]}"; do frozen "$dir" || missed+=("$dir"); done
      sim_send THAW || rc=1
    fi
    [ ${#missed[@]} -eq 0 ] || { why "not frozen during the hold: ${missed[*]}"; rc=1; }
  fi
  for dir in "${mounted[@]}"; do
    [ "$rc" -ne 0 ] || writable "$dir" || { why "$dir is not writable after THAW"; rc=1; }
  done
  for dir in "${mounted[@]}"; do
    fsfreeze -u "$dir" 2>/dev/null
    umount "$dir"
  done
  rm -f "$E2E"/late-*.img
  return "$rc"
}
