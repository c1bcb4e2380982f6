# shellcheck shell=bash
# The agent killed while frozen (kill-while-frozen-thaws) had started the hooks; its successor,
# once systemd answers it, stops hv-vss-quiesce.target, and the hooks are resumed.
check_hooks_left_by_a_killed_agent_are_resumed() {
  local hook
  for hook in hook-a.service hook-b.service; do
    wait_for 30 inactive "$hook" || { why "$hook is still $(systemctl is-active "$hook") after the successor started"; return 1; }
  done
  agent_says "hooks left quiesced" || { why "the successor does not say it resumed the hooks"; return 1; }
}
