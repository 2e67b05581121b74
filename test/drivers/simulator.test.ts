// The simulator as a driver: domains with domids and memory, the guest kernel's answer
// to control/shutdown, the guest agent's xenstore keys, suspend images on disk, the
// domain table outliving the daemon, the change feed and the fault hints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DriverError, type DomainConfig, type DomainEvent } from '../../drivers/driver.js';
import { SimulatorDriver } from '../../drivers/simulator/index.js';

const MiB = 1024 * 1024;
const cfg = (n: number, over: Partial<DomainConfig> = {}): DomainConfig => ({
  uuid: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`, name: `guest-${n}`, hvm: false,
  memory: { maxBytes: 256 * MiB, targetBytes: 256 * MiB, shadowMiB: 0 }, vcpus: { max: 2, atStartup: 1 },
  pv: { bootloader: '', bootloaderArgs: '', kernel: '/boot/k', ramdisk: '', args: '' }, platform: {}, disks: [],
  nics: [{ devid: 0, vif: 'OpaqueRef:v', mac: '00:16:3e:01:02:03', bridge: 'xenbr0', mtu: 1500 }], xenstoreData: {}, ...over,
});

async function until(p: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await p()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

test('domains: build, run, guest agent, clean shutdown, free memory', async () => {
  const sim = new SimulatorDriver({ delayScale: 0, totalMemoryBytes: 4096 * MiB, dom0MemoryBytes: 1024 * MiB, cpus: 2 });
  await sim.open();
  const events: DomainEvent[] = [];
  sim.subscribe((e) => events.push(e));
  assert.equal((await sim.host()).freeMemoryBytes, 3072 * MiB);
  const d = await sim.create(cfg(1), { paused: true });
  assert.equal(d.state, 'paused');
  assert.equal((await sim.host()).freeMemoryBytes, 2816 * MiB);
  await sim.unpause(d.domid);
  await until(async () => (await sim.xenstoreRead(`/local/domain/${d.domid}/data/os_distro`)) === 'debian', 'the guest agent');
  assert.equal(await sim.xenstoreRead(`/local/domain/${d.domid}/attr/eth0/ip`), '10.1.2.3');
  assert.ok(events.some((e) => e.kind === 'guest'));
  await assert.rejects(sim.create(cfg(1), { paused: false }), (e: unknown) => e instanceof DriverError && e.kind === 'exists' && e.detail.domid === d.domid);
  await assert.rejects(sim.create(cfg(2, { memory: { maxBytes: 8192 * MiB, targetBytes: 8192 * MiB, shadowMiB: 0 } }), { paused: false }),
    (e: unknown) => e instanceof DriverError && e.kind === 'no-memory' && e.detail.needed === 8192 * MiB && e.detail.available === 2816 * MiB);
  await sim.requestShutdown(d.domid, 'poweroff', 5000);
  await until(async () => (await sim.info(d.domid))?.state === 'shutdown', 'the guest to stop');
  assert.equal((await sim.info(d.domid))?.shutdownReason, 'poweroff');
  await sim.destroy(d.domid);
  assert.equal(await sim.info(d.domid), undefined);
  assert.ok(events.some((e) => e.kind === 'gone' && e.domid === d.domid));
  await sim.close();
});

test('suspend images are real files; the domain table outlives the driver', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'xapid-sim-'));
  try {
    const stateFile = path.join(dir, 'sim.json');
    let sim = new SimulatorDriver({ stateFile, delayScale: 0 });
    await sim.open();
    const a = await sim.create(cfg(1), { paused: false });
    const b = await sim.create(cfg(2), { paused: false });
    await until(async () => (await sim.xenstoreRead(`/local/domain/${a.domid}/data/updated`)) === '1', 'agent');
    const image = path.join(dir, 'a.img');
    await sim.save(a.domid, image, 5000);
    assert.equal(await sim.info(a.domid), undefined);
    assert.match(readFileSync(image, 'utf8'), /xapid-simulator-suspend-image-v1/);
    await sim.close();

    sim = new SimulatorDriver({ stateFile, delayScale: 0 });
    await sim.open();
    assert.deepEqual((await sim.list()).map((x) => [x.domid, x.state]), [[b.domid, 'running']]);
    const r = await sim.restore(image, cfg(1), { paused: true });
    assert.notEqual(r.domid, a.domid);
    assert.equal(await sim.xenstoreRead(`/local/domain/${r.domid}/data/os_distro`), 'debian', 'the guest keeps what it had');
    await assert.rejects(sim.restore(image, cfg(3), { paused: true }), (e: unknown) => e instanceof DriverError && e.kind === 'invalid');
    await sim.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('faults for tests: refused start, ignored and hung shutdowns, crash by sysrq, no PV drivers', async () => {
  const sim = new SimulatorDriver({ delayScale: 0 });
  await sim.open();
  await assert.rejects(sim.create(cfg(1, { sim: { refuseStart: 'no way' } }), { paused: false }), (e: unknown) => e instanceof DriverError && e.kind === 'build' && e.message === 'no way');
  assert.deepEqual(await sim.list(), []);
  const deaf = await sim.create(cfg(2, { sim: { shutdown: 'ignore' } }), { paused: false });
  await assert.rejects(sim.requestShutdown(deaf.domid, 'poweroff', 100), (e: unknown) => e instanceof DriverError && e.kind === 'ack-timeout');
  const hung = await sim.create(cfg(3, { sim: { shutdown: 'hang' } }), { paused: false });
  await sim.requestShutdown(hung.domid, 'reboot', 1000);
  assert.equal((await sim.info(hung.domid))?.state, 'running');
  await sim.sysrq(hung.domid, 'c');
  assert.deepEqual([(await sim.info(hung.domid))?.state, (await sim.info(hung.domid))?.shutdownReason], ['crashed', 'crash']);
  const hvm = await sim.create(cfg(4, { hvm: true, pv: undefined, hvmBoot: { order: 'dc' }, sim: { noAgent: true } }), { paused: false });
  await assert.rejects(sim.requestShutdown(hvm.domid, 'poweroff', 100), (e: unknown) => e instanceof DriverError && e.kind === 'no-pv-drivers');
  await assert.rejects(sim.create(cfg(5, { pv: { bootloader: 'pygrub', bootloaderArgs: '', kernel: '', ramdisk: '', args: '' } }), { paused: false }),
    (e: unknown) => e instanceof DriverError && e.kind === 'bootloader');
  const con = await sim.console(hung.domid);
  const seen: string[] = [];
  con.onData((t) => seen.push(t));
  assert.match(seen.join(''), /Kernel panic/);
  con.close();
  await sim.close();
});
