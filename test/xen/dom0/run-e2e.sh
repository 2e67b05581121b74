#!/bin/sh
# Runs in dom0 after the toolstack is up: the scenario client, which starts xapid itself.
export PATH=/opt/node/bin:$PATH
cd /opt/xapid || exit 1
echo "XAPID-E2E: node $(node --version), starting the scenario, uptime $(cut -d' ' -f1 /proc/uptime)s"
node dist/test/xen/scenario.js
echo "XAPID-E2E: scenario exited with $?, uptime $(cut -d' ' -f1 /proc/uptime)s"
