#!/bin/sh
# Runs in dom0 after the toolstack is up: the scenario client, which starts xapid itself,
# then the project's tests that need kernel features the CI machine's kernel lacks
# (802.1Q VLANs, bonds, dummy NICs, device-mapper for LVM), on dom0's Debian kernel.
export PATH=/opt/node/bin:$PATH
cd /opt/xapid || exit 1
echo "XAPID-E2E: node $(node --version), starting the scenario, uptime $(cut -d' ' -f1 /proc/uptime)s"
if grep -qw e2e.no_scenario /proc/cmdline; then
  echo "XAPID-E2E: scenario skipped (E2E_SCENARIO=0)"
else
  node dist/test/xen/scenario.js
  echo "XAPID-E2E: scenario exited with $?, uptime $(cut -d' ' -f1 /proc/uptime)s"
fi

for m in 8021q bonding dummy veth dm-mod dm-thin-pool sch_tbf; do modprobe $m || echo "XAPID-E2E: modprobe $m failed"; done
TESTS=$(sed -n 's/.*e2e\.kernel_tests=\([^ ]*\).*/\1/p' /proc/cmdline | tr , ' ')
TESTS=${TESTS:-"dist/test/network/network.test.js dist/test/network/vif-attach.test.js dist/test/storage/lvm.test.js"}
echo "XAPID-E2E: kernel tests: $TESTS"
# Every feature is there: a missing one must fail the tests, not narrow them.
XAPID_TESTS_NEED_KERNEL=1 node --test --test-reporter=spec $TESTS > /tmp/kernel-tests.log 2>&1
rc=$?
sed 's/^/E2E-KT /' /tmp/kernel-tests.log
echo "E2E-KERNEL-TESTS: exit $rc, uptime $(cut -d' ' -f1 /proc/uptime)s"
