# shellcheck shell=bash
# systemctl enable --now starts the agent with its default device path, and it registers with
# the simulated device.
check_agent_enable_now_is_active() {
  systemctl enable --now "$AGENT" || { why "systemctl enable --now failed"; return 1; }
  [ "$(systemctl is-active "$AGENT")" = active ] || { why "the unit is $(systemctl is-active "$AGENT")"; return 1; }
  note "systemd-analyze security: exposure $(exposure)"
  wait_for 30 sim_count_above registered 0 || why "the agent did not register with /dev/vmbus/hv_vss"
}
