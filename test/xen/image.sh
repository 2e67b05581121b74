#!/bin/bash
# Builds the pieces of a small real Xen host for xapid's end-to-end test:
#   base   Xen 4.17 (multiboot image), the Debian dom0 kernel and a dom0 root filesystem
#          from Debian's packages, and the guest's kernel. Slow (~2 min); cached in $XEN_WORK.
#   payload  dom0's init, the busybox PV guest's initramfs, the built project (dist, storage
#          plugins, production node_modules) and this machine's Node 20, as a second
#          initramfs archive; rebuilt on every run (seconds).
# Linux accepts several concatenated cpio archives as one initramfs, so dom0 boots from
# base + payload without repacking the base.
#
#   test/xen/image.sh [base|payload|all]      (needs root: debootstrap, chroot)
# XEN_WORK (default /var/tmp/xapid-xen) holds everything; MIRROR/SEC_MIRROR override the
# Debian mirrors read from this machine's apt sources.
set -Eeuo pipefail
trap 'echo "[xen-image] failed at line $LINENO: $BASH_COMMAND" >&2' ERR

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(cd "$HERE/../.." && pwd)
W=${XEN_WORK:-/var/tmp/xapid-xen}
XENV=4.17
# Bump when what base() builds changes, so that a cached base is rebuilt.
BASE_VERSION=6
log() { echo "[xen-image $(date +%T)] $*" >&2; }

apt_uri() { # the first URI of this machine's apt sources that serves suite $1
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
    awk -v suite="$1" '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i==suite){print u; exit}} /^deb /{for(i=3;i<=NF;i++) if($i==suite){print ($2 ~ /^\[/ ? $3 : $2); exit}}'
}

host_packages() {
  local need=()
  for p in qemu-system-x86 debootstrap cpio rsync zstd xz-utils python3 binutils; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing host packages: ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
}

download_debs() {
  mkdir -p "$W/debs"; cd "$W/debs"
  local kpkg
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  echo "${kpkg#linux-image-}" > KVER
  for p in "xen-hypervisor-${XENV}-amd64" "$kpkg" busybox-static; do
    ls "${p}"_*.deb >/dev/null 2>&1 || { log "apt-get download $p"; apt-get download "$p"; }
  done
}

extract_boot() {
  local kver; kver=$(cat "$W/debs/KVER")
  mkdir -p "$W/boot" "$W/x"
  if [ ! -f "$W/boot/xen" ]; then
    rm -rf "$W/x/xen"; dpkg -x "$W"/debs/xen-hypervisor-${XENV}-amd64_*.deb "$W/x/xen"
    # QEMU's multiboot loader takes the plain 32-bit ELF, not the gzipped one.
    zcat "$W/x/xen/boot/xen-${XENV}-amd64.gz" > "$W/boot/xen"
  fi
  if [ ! -f "$W/boot/vmlinuz" ]; then
    rm -rf "$W/x/linux"; dpkg -x "$W"/debs/linux-image-${kver}_*.deb "$W/x/linux"
    cp "$W/x/linux/boot/vmlinuz-$kver" "$W/boot/vmlinuz"
  fi
  if [ ! -x "$W/x/bb/bin/busybox" ]; then
    rm -rf "$W/x/bb"; dpkg -x "$W"/debs/busybox-static_*.deb "$W/x/bb"
  fi
}

# qemu-system-xen: dom0's qdisk backend, which serves the file SR's qcow2 images to guests;
# qemu-utils: qemu-img for the file SR; libstdc++6: Node's runtime; lvm2: the lvm SR.
ROOTFS_PACKAGES="xen-utils-${XENV} xenstore-utils qemu-system-xen qemu-utils busybox kmod procps iproute2 libstdc++6 lvm2"

build_rootfs() {
  if [ -f "$W/rootfs/.done" ]; then
    # A cached root filesystem gets the packages added to the list since it was made.
    local p need=()
    for p in $ROOTFS_PACKAGES; do chroot "$W/rootfs" dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    if [ ${#need[@]} -gt 0 ]; then
      log "adding to the root filesystem: ${need[*]}"
      chroot "$W/rootfs" apt-get update -q
      DEBIAN_FRONTEND=noninteractive chroot "$W/rootfs" apt-get install -y -q --no-install-recommends "${need[@]}"
      chroot "$W/rootfs" apt-get clean
    fi
    return 0
  fi
  local mirror=${MIRROR:-$(apt_uri bookworm)} sec=${SEC_MIRROR:-$(apt_uri bookworm-security)}
  [ -n "$mirror" ] && [ -n "$sec" ] || { echo "no bookworm apt sources found: set MIRROR and SEC_MIRROR" >&2; exit 1; }
  log "debootstrap bookworm into $W/rootfs"
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase --include="${ROOTFS_PACKAGES// /,}" \
    bookworm "$W/rootfs" "$mirror"
  # The hypervisor comes from bookworm-security: bring the tools to the same release.
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' "$mirror" "$mirror" "$sec" \
    > "$W/rootfs/etc/apt/sources.list"
  chroot "$W/rootfs" apt-get update -q
  DEBIAN_FRONTEND=noninteractive chroot "$W/rootfs" apt-get -y -q --no-install-recommends dist-upgrade
  chroot "$W/rootfs" apt-get clean
  touch "$W/rootfs/.done"
}

# The uncompressed kernel ELF inside Debian's bzImage: booting it skips a long
# decompression under emulation.
extract_vmlinux() {
  local off
  off=$(python3 -c "import sys;print(open(sys.argv[1],'rb').read().find(b'\\xfd7zXZ\\x00'))" "$1")
  { tail -c +$((off+1)) "$1" 2>/dev/null || true; } | xz -dc --single-stream 2>/dev/null
}

# Copies a dynamically linked binary and the libraries it loads into root $2.
copy_with_libs() {
  local bin=$1 root=$2 lib
  install -D -m 755 "$W/rootfs$bin" "$root$bin"
  for lib in $(chroot "$W/rootfs" ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}'); do
    [ -f "$root$lib" ] || install -D -m 755 "$W/rootfs$(readlink -f "$W/rootfs$lib" | sed "s|^$W/rootfs||")" "$root$lib"
  done
}

build_guest_initrd() {
  # The PV guest: busybox, Xen's block and network front ends, and xenstore-write so that
  # its init can report itself to the toolstack as a guest agent would.
  local kver D="$W/guest-root"; kver=$(cat "$W/debs/KVER")
  rm -rf "$D"; mkdir -p "$D"/{bin,sbin,etc/init.d,proc,sys,dev,tmp,root,lib/modules}
  cp "$W/x/bb/bin/busybox" "$D/bin/busybox"
  for a in $("$D/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$D/bin/$a"; done
  for a in init poweroff reboot halt; do ln -sf ../bin/busybox "$D/sbin/$a"; done
  ln -sf bin/busybox "$D/init"
  for m in drivers/block/xen-blkfront.ko drivers/net/xen-netfront.ko; do
    cp "$W/x/linux/lib/modules/$kver/kernel/$m"* "$D/lib/modules/"
  done
  for t in xenstore-write xenstore-read; do copy_with_libs "/usr/bin/$t" "$D"; done
  install -m 755 "$HERE/guest/rcS" "$D/etc/init.d/rcS"
  install -m 644 "$HERE/guest/inittab" "$D/etc/inittab"
  (cd "$D" && find . | cpio -o -H newc --quiet | gzip -6) > "$W/boot/guest-initrd.gz"
}

build_dom0_initrd() {
  local kver S="$W/stage"; kver=$(cat "$W/debs/KVER")
  log "staging the dom0 root filesystem"
  rm -rf "$S"
  rsync -a --exclude=/usr/share/doc --exclude=/usr/share/man --exclude=/usr/share/info \
    --exclude=/usr/share/locale --exclude=/usr/share/i18n --exclude=/usr/share/zoneinfo \
    --exclude='/var/cache/apt/*' --exclude='/var/lib/apt/lists/*' --exclude='/var/log/*' \
    --exclude=/usr/share/lintian --exclude=/usr/share/bash-completion --exclude=/.done \
    "$W/rootfs/" "$S/"
  # Only the kernel modules dom0 needs: Xen's device files and back ends, bridges, loop;
  # and for the project's kernel tests: VLANs, bonds, dummy and veth NICs, device-mapper
  # (thin pools need libcrc32c), traffic control for VIF rate limits; bonding needs tls.
  local M="$W/x/linux/lib/modules/$kver" T="$S/lib/modules/$kver" d
  mkdir -p "$T/kernel"
  for d in drivers/xen drivers/block/xen-blkback drivers/net/xen-netback drivers/block/loop.ko \
           net/bridge net/802 net/llc drivers/net/tun.ko net/8021q drivers/net/bonding \
           drivers/net/dummy.ko drivers/net/veth.ko drivers/md lib/libcrc32c.ko crypto/crc32c_generic.ko \
           net/sched net/tls; do
    mkdir -p "$T/kernel/$(dirname $d)"; cp -a "$M/kernel/$d" "$T/kernel/$d"
  done
  cp "$M"/modules.order "$M"/modules.builtin* "$T/" 2>/dev/null || true
  chroot "$S" depmod -a "$kver"
  mkdir -p "$S/e2e"
  extract_vmlinux "$W/boot/vmlinuz" > "$S/e2e/vmlinux"
  echo xapid-e2e > "$S/etc/hostname"
  log "packing the dom0 initramfs ($(du -sh "$S" | cut -f1) unpacked)"
  (cd "$S" && find . | cpio -o -H newc --quiet | zstd -q -T0 -9) > "$W/boot/dom0-base.cpio.zst"
}

base() {
  local stamp="$W/boot/base.stamp" want
  want="$BASE_VERSION"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then log "base image is current"; return 0; fi
  host_packages
  download_debs
  extract_boot
  build_rootfs
  build_dom0_initrd
  echo "$want" > "$stamp"
}

payload() {
  # The project as built on this machine: the same Node binary and native modules run in dom0.
  local P="$W/payload" node
  rm -rf "$P"; mkdir -p "$P/opt/xapid" "$P/opt/node/bin" "$P/e2e"
  [ -f "$PROJECT/dist/src/main.js" ] || { echo "build the project first (npm run build)" >&2; exit 1; }
  node=$(readlink -f "$(command -v node)")
  cp "$node" "$P/opt/node/bin/node"
  build_guest_initrd
  cp "$W/boot/guest-initrd.gz" "$P/e2e/guest-initrd.gz"
  rsync -a "$PROJECT/package.json" "$PROJECT/dist" "$PROJECT/storage-plugins" "$PROJECT/migrations" "$P/opt/xapid/"
  # What the xl driver runs besides xl itself (the vif hotplug script).
  mkdir -p "$P/opt/xapid/drivers/xl"; rsync -a "$PROJECT/drivers/xl/hotplug" "$P/opt/xapid/drivers/xl/"
  rsync -a --exclude=.cache --exclude='/typescript' --exclude='/@types' --exclude='/autocannon' \
    --exclude='/undici' --exclude='/xen-api' "$PROJECT/node_modules/" "$P/opt/xapid/node_modules/"
  # dom0's init lives here, not in the base, so that changing it rebuilds nothing slow.
  install -m 755 "$HERE/dom0/init" "$P/init"
  install -m 755 "$HERE/dom0/run-e2e.sh" "$P/e2e/run-e2e.sh"
  mkdir -p "$P/usr/local/bin"; ln -sf /opt/node/bin/node "$P/usr/local/bin/node"
  (cd "$P" && find . | cpio -o -H newc --quiet | zstd -q -T0 -3) > "$W/boot/payload.cpio.zst"
  cat "$W/boot/dom0-base.cpio.zst" "$W/boot/payload.cpio.zst" > "$W/boot/dom0-initrd"
  log "dom0 initramfs: $(du -h "$W/boot/dom0-initrd" | cut -f1)"
}

mkdir -p "$W"
case "${1:-all}" in
  base) base ;;
  payload) payload ;;
  all) base; payload ;;
  *) echo "usage: $0 [base|payload|all]" >&2; exit 2 ;;
esac
