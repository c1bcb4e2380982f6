# shellcheck shell=bash
# The VM's two blank data disks become ext4 and xfs filesystems, mounted before the agent starts.
check_data_disks_mounted() {
  mkfs.ext4 -q -F /dev/disk/by-id/virtio-ext4data || why "mkfs.ext4 failed" || return 1
  mkfs.xfs -q -f /dev/disk/by-id/virtio-xfsdata || why "mkfs.xfs failed" || return 1
  mkdir -p /mnt/ext4 /mnt/xfs
  mount /dev/disk/by-id/virtio-ext4data /mnt/ext4 || why "mounting ext4 failed" || return 1
  mount /dev/disk/by-id/virtio-xfsdata /mnt/xfs || why "mounting xfs failed" || return 1
  [ "$(findmnt -no FSTYPE /mnt/ext4) $(findmnt -no FSTYPE /mnt/xfs) $(findmnt -no FSTYPE /)" = "ext4 xfs ext4" ] ||
    why "unexpected filesystem types: $(findmnt -no TARGET,FSTYPE / /mnt/ext4 /mnt/xfs | tr '\n' ' ')"
}
