#!/bin/bash
# npm run test:xen: builds the e2e image (the base is cached), boots Xen with a Debian
# dom0 under QEMU's software emulation, and runs test/xen/scenario.ts in dom0 against
# xapid's xl driver, then the project's tests that need kernel features (VLANs, bonds,
# device-mapper) on dom0's kernel. Prints each step as it finishes; exits 0 only when
# every step and every one of those tests passed.
# Knobs: XEN_WORK (cache, /var/tmp/xapid-xen), MEM_MB (3584), DOM0_MEM (2048M),
# QEMU_CPU (max,-smap,-xsave), E2E_TIMEOUT (seconds for the whole boot, 1800),
# E2E_SHELL=1 (a shell on the console after the scenario), E2E_KERNEL_TESTS (the dist/
# test files dom0 runs after the scenario, space-separated; default: the network and lvm
# tests), E2E_SCENARIO=0 (only the kernel tests: quicker when working on those).
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
W=${XEN_WORK:-/var/tmp/xapid-xen}
export XEN_WORK=$W
MEM_MB=${MEM_MB:-3584}
DOM0_MEM=${DOM0_MEM:-2048M}
T0=$(date +%s)
"$HERE/image.sh" all
echo "[xen-e2e] image ready after $(( $(date +%s) - T0 ))s"

XEN_CMDLINE="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=${DOM0_MEM},max:${DOM0_MEM} dom0_max_vcpus=2"
DOM0_CMDLINE="console=hvc0 earlyprintk=xen rdinit=/init"
[ "${E2E_SHELL:-0}" = 1 ] && DOM0_CMDLINE="$DOM0_CMDLINE e2e.shell"
[ -n "${E2E_KERNEL_TESTS:-}" ] && DOM0_CMDLINE="$DOM0_CMDLINE e2e.kernel_tests=${E2E_KERNEL_TESTS// /,}"
[ "${E2E_SCENARIO:-1}" = 0 ] && DOM0_CMDLINE="$DOM0_CMDLINE e2e.no_scenario"
mkdir -p "$W/logs"
LOG="$W/logs/serial-$(date +%Y%m%d-%H%M%S).log"
echo "[xen-e2e] booting Xen under QEMU (TCG); serial log: $LOG"
serial_in=/dev/null
[ "${E2E_SHELL:-0}" = 1 ] && serial_in=/dev/stdin
set +e
# -cpu max without SMAP: with SMAP exposed, Xen's PV dom0 faults at once under TCG. Without
# XSAVE (and so without AVX): with it, user processes in dom0 (Node) died of SIGSEGV as soon
# as a guest ran, seemingly extended register state lost across Xen's context switches.
# QEMU's multiboot loader: -kernel is Xen, -initrd lists the modules ("file args,file").
timeout -k 10 "${E2E_TIMEOUT:-1800}" qemu-system-x86_64 \
  -machine pc -accel tcg,thread=multi -cpu "${QEMU_CPU:-max,-smap,-xsave}" -smp 2 -m "$MEM_MB" \
  -display none -vga none -monitor none -serial stdio -nic none -no-reboot \
  -kernel "$W/boot/xen" -append "$XEN_CMDLINE" \
  -initrd "$W/boot/vmlinuz $DOM0_CMDLINE,$W/boot/dom0-initrd" \
  < $serial_in 2>&1 | T0=$(date +%s.%N) python3 -u -c '
import os, sys, time
t0 = float(os.environ["T0"])
log = open(sys.argv[1], "wb")
for l in sys.stdin.buffer:
    l = b"[%7.2f] " % (time.time() - t0) + l.replace(b"\r", b"")
    log.write(l); log.flush()
    if b"E2E" in l: sys.stdout.buffer.write(l); sys.stdout.flush()' "$LOG"
rc=${PIPESTATUS[0]}
set -e
echo "[xen-e2e] QEMU exited ($rc) after $(( $(date +%s) - T0 ))s in all"
scenario_ok() { [ "${E2E_SCENARIO:-1}" = 0 ] || grep -q 'E2E-SUMMARY: [0-9]* passed, 0 failed' "$LOG"; }
if scenario_ok && grep -q 'E2E-KERNEL-TESTS: exit 0' "$LOG"; then
  echo "[xen-e2e] PASS"
  exit 0
fi
[ "$rc" = 124 ] && echo "[xen-e2e] the run timed out"
echo "[xen-e2e] FAIL; the serial console's last lines:"
tail -60 "$LOG"
exit 1
