# shellcheck shell=bash
# The project's .deb installs.
check_package_installs() {
  install_package || { why "installing the package failed"; return 1; }
  [ -x /usr/sbin/hv-vss-agent ] || why "no /usr/sbin/hv-vss-agent after the install" || return 1
  systemctl cat "$AGENT" >/dev/null || why "systemd does not know $AGENT after the install"
}
