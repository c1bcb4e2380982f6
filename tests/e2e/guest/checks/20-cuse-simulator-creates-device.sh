# shellcheck shell=bash
# hv-vss-sim --cuse presents /dev/vmbus/hv_vss as a real character device. A udev rule of the
# test's own gives it the systemd device unit of the kernel's misc device, which the agent's unit
# is bound to (the CUSE device's sysfs path is /sys/devices/virtual/cuse/vmbus!hv_vss).
check_cuse_simulator_creates_device() {
  modprobe cuse || { why "modprobe cuse failed"; return 1; }
  mkdir -p /run/udev/rules.d
  echo 'SUBSYSTEM=="cuse", KERNEL=="vmbus/hv_vss", TAG+="systemd", ENV{SYSTEMD_ALIAS}+="/sys/devices/virtual/misc/vmbus!hv_vss"' \
    >/run/udev/rules.d/70-e2e-cuse-hv-vss.rules
  udevadm control --reload || { why "udevadm control --reload failed"; return 1; }
  sim_start
  wait_for 30 grep -q '"event":"listening"' "$SIM_OUT" || { why "the simulator did not start: $(cat "$E2E/sim.err" "$SIM_OUT")"; return 1; }
  [ -c /dev/vmbus/hv_vss ] || { why "/dev/vmbus/hv_vss is not a character device"; return 1; }
  local dev
  dev=$(stat -c '%Hr:%Lr' /dev/vmbus/hv_vss)
  note "/dev/vmbus/hv_vss is $dev, class $(basename "$(readlink "/sys/dev/char/$dev/subsystem")")"
  wait_for 30 systemctl is-active --quiet 'sys-devices-virtual-misc-vmbus\x21hv_vss.device' ||
    why "the device unit sys-devices-virtual-misc-vmbus\\x21hv_vss.device is not active"
}
