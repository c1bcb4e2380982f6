# Shared by ./run and bench/run: dependency installation and the CMake build.
# Expects $top (the checkout) to be set by the caller.

packages=(cmake g++ make pkg-config libsystemd-dev libspdlog-dev libfmt-dev libcli11-dev libinih-dev
          googletest libgtest-dev xfsprogs btrfs-progs e2fsprogs util-linux clang libclang-rt-14-dev dbus-daemon
          dbus-system-bus-common systemd  # the tests' private bus (and Debian's system.conf); busctl
          libfuse3-dev                    # hv-vss-sim --cuse
          mariadb-server mariadb-client postgresql  # hv-vss-hold's tests start private servers of their own
          debhelper lintian rpm rpmlint file elfutils  # tools/packages: the builds, their linters
          qemu-guest-agent)                            # bench/run: idle cost beside Debian's guest agent

# A stage's heading, with the time since the script started (to see where a run's minutes go).
stage() {
  printf '==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
}

need_root() {
  [ "$(id -u)" -eq 0 ] || { echo "$0: must run as root (it mounts and freezes scratch filesystems)" >&2; exit 1; }
}

install_deps() {  # install_deps [extra packages...]
  local missing=() p
  for p in "${packages[@]}" "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  stage "installing ${missing[*]}"
  apt-get update -qq
  # Installed, but no service started (the database servers': tests start private ones of their own).
  local policy=/usr/sbin/policy-rc.d created=''
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1; fi
  local status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  if [ -n "$created" ]; then rm -f "$policy"; fi
  return "$status"
}

build() {  # build DIR [cmake args...] [-- cmake --build args...]
  local dir=$1 configure=(); shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do configure+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  stage "building in $dir"
  # Line tables only (-g1): stack traces and sanitizer reports keep file and line, and each file
  # compiles a third faster than with full debug information. The packages build with their own flags.
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" "${configure[@]}" >/dev/null
  cmake --build "$dir" -j "$(nproc)" "$@"
}
