# shellcheck shell=bash
# The simulator, told that the host is done, saw every reply right and on time, and no write the
# kernel would have rejected.
check_simulator_verdict() {
  local rc=0
  sim_stop || rc=$?
  local done_line
  done_line=$(grep '"event":"done"' "$SIM_OUT")
  note "${done_line:-no verdict}"
  [ "$rc" -eq 0 ] || { why "hv-vss-sim exited $rc: $(grep '"ok":false' "$SIM_OUT" | head -3 | tr '\n' ' ')"; return 1; }
}
