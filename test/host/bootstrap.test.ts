// First start creates the pool, this host, its CPUs and metrics and the control
// domain from the real machine; a restart finds the same objects again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { jsonCall, login, startDaemon, tempDir } from '../helpers/daemon.js';
import { readCpus, readMemoryTotal } from '../../src/host/probe.js';

async function snapshot(url: string) {
  const s = await login(url);
  const call = async (m: string, ...a: unknown[]) => {
    const r = await jsonCall(url, m, [s, ...a]);
    assert.equal(r.error, undefined, `${m}: ${JSON.stringify(r.error)}`);
    return r.result;
  };
  const pools = await call('pool.get_all_records');
  const hosts = await call('host.get_all_records');
  const cpus = await call('host_cpu.get_all_records');
  const vms = await call('VM.get_all_records');
  return { call, pools, hosts, cpus, vms };
}

test('bootstrap records describe this machine and survive a restart', async (t) => {
  const stateDir = tempDir();
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const d1 = await startDaemon({ stateDir });
  const first = await snapshot(d1.url);
  const hostMetricsRef = (Object.values(first.hosts)[0] as any).metrics;
  const metrics = await first.call('host_metrics.get_record', hostMetricsRef);
  await d1.stop();

  assert.equal(Object.keys(first.pools).length, 1);
  const [poolRef, pool] = Object.entries(first.pools)[0] as [string, any];
  const [hostRef, host] = Object.entries(first.hosts)[0] as [string, any];
  assert.ok(poolRef);
  assert.equal(pool.master, hostRef);
  assert.equal(host.API_version_major, 1);
  assert.equal(host.API_version_minor, 1);
  assert.ok(host.name_label.length > 0);
  assert.ok(host.software_version.product_version);

  // One host_cpu per logical CPU of /proc/cpuinfo, bound to the host both ways.
  const cpuinfo = readCpus(readFileSync('/proc/cpuinfo', 'utf8'));
  assert.equal(Object.keys(first.cpus).length, cpuinfo.length);
  assert.deepEqual([...host.host_CPUs].sort(), Object.keys(first.cpus).sort());
  for (const c of Object.values(first.cpus) as any[]) {
    assert.equal(c.host, hostRef);
    assert.equal(c.vendor, cpuinfo[c.number]!.vendor);
  }

  // host_metrics memory from /proc/meminfo, in bytes.
  assert.equal(metrics.memory_total, readMemoryTotal(readFileSync('/proc/meminfo', 'utf8')));
  assert.equal(metrics.live, true);

  // The control domain: running, domid 0, resident on this host.
  const dom0 = Object.entries(first.vms).filter(([, v]: [string, any]) => v.is_control_domain);
  assert.equal(dom0.length, 1);
  const [dom0Ref, dom0Rec] = dom0[0] as [string, any];
  assert.equal(dom0Rec.power_state, 'Running');
  assert.equal(dom0Rec.domid, 0);
  assert.equal(dom0Rec.resident_on, hostRef);
  assert.ok(host.resident_VMs.includes(dom0Ref));
  assert.equal(dom0Rec.VCPUs_max, cpuinfo.length);

  // A restart keeps every uuid and makes no second copy.
  const d2 = await startDaemon({ stateDir });
  t.after(() => d2.stop());
  const second = await snapshot(d2.url);
  const uuids = (recs: Record<string, any>) => Object.values(recs).map((r) => r.uuid).sort();
  assert.deepEqual(uuids(second.pools), uuids(first.pools));
  assert.deepEqual(uuids(second.hosts), uuids(first.hosts));
  assert.deepEqual(uuids(second.cpus), uuids(first.cpus));
  assert.deepEqual(uuids(second.vms), uuids(first.vms));
});
