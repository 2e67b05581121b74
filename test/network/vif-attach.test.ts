// The functions the hypervisor driver and VM power-state machine will call: attach a
// VIF's backend interface to its network's bridge (MTU, rate limit) and detach it, and
// VIF.plug/unplug through a driver's hot-plug hooks. A tap device in a test namespace
// plays the backend; the "driver" here is the test's own, creating and deleting taps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { ObjectStore } from '../../src/db/store.js';
import { bootstrap } from '../../src/host/bootstrap.js';
import { NetworkService } from '../../src/network/service.js';
import { createNetwork, createVif, plugVif, unplugVif } from '../../src/network/ops.js';
import { XenApiError } from '../../src/core/errors.js';
import { INTERNAL } from '../../src/core/context.js';
import type { VifHotplug } from '../../src/network/service.js';
import { tempDir } from '../helpers/daemon.js';
import { TestNamespace } from './netns.js';

let ns: TestNamespace | undefined;
let dir: string;
let store: ObjectStore;
let svc: NetworkService;
let vm: string;
let bridge: string;
let net: string;

before(async () => {
  ns = TestNamespace.create();
  if (!ns) return;
  ns.addNic('eth0');
  dir = tempDir('xapid-vif-');
  store = new ObjectStore(path.join(dir, 'xapid.db'));
  const id = bootstrap(store);
  svc = new NetworkService({
    store, log: pino({ level: 'silent' }), hostRef: id.hostRef, mode: 'namespace', netns: ns.name, stateDir: dir, metricsIntervalSec: 0,
    hotplug: { plug: (v, f) => hooks.plug(v, f), unplug: (v, f) => hooks.unplug(v, f) },
  });
  await svc.start();
  net = await createNetwork(svc, INTERNAL, { name_label: 'guests', name_description: '', other_config: {} });
  bridge = store.field('network', net, 'bridge')!;
  vm = store.create('VM', { name_label: 'running guest', power_state: 'Running', domid: 7, is_a_template: false });
});

after(async () => {
  await svc?.stop();
  store?.close();
  ns?.delete();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The hypervisor side of VIF hot-plug, as each test wants it. */
const noHooks: VifHotplug = {
  plug: () => Promise.reject(new XenApiError('NOT_IMPLEMENTED', ['no hot-plug in this test'])),
  unplug: () => Promise.reject(new XenApiError('NOT_IMPLEMENTED', ['no hot-plug in this test'])),
};
let hooks: VifHotplug = noHooks;

function newVif(device: string, extra: Record<string, unknown> = {}): string {
  return createVif(store, {
    device, network: net, VM: vm, MAC: '', MTU: 1400, other_config: {},
    qos_algorithm_type: '', qos_algorithm_params: {}, ...extra,
  });
}

test('attachVif puts the backend on the bridge with the VIF\'s MTU and rate limit; detachVif takes it off', async (t) => {
  if (!ns) return t.skip('needs the rights to create network namespaces');
  const vif = newVif('0', { qos_algorithm_type: 'ratelimit', qos_algorithm_params: { kbps: '1000' } });
  assert.deepEqual(store.field('VIF', vif, 'allowed_operations'), ['attach', 'plug'], 'plug is allowed for a running VM');
  ns.ip('tuntap', 'add', 'dev', 'vif7.0', 'mode', 'tap');
  await svc.attachVif(vif, 'vif7.0');
  const l = ns.link('vif7.0')!;
  assert.equal(l.master, bridge);
  assert.equal(l.mtu, 1400);
  assert.ok(l.flags.includes('UP'));
  assert.match(ns.exec('tc', 'qdisc', 'show', 'dev', 'vif7.0'), /tbf .*rate 1Mbit/);
  assert.equal(store.field('VIF', vif, 'currently_attached'), true);
  assert.deepEqual(store.field('VIF', vif, 'allowed_operations'), ['unplug']);

  await svc.detachVif(vif, 'vif7.0');
  assert.equal(ns.link('vif7.0')!.master, undefined);
  assert.equal(store.field('VIF', vif, 'currently_attached'), false);
  ns.ip('link', 'delete', 'dev', 'vif7.0');

  // A backend the kernel will not take as a bridge port (a bridge): CANNOT_PLUG_VIF, undone.
  ns.ip('link', 'add', 'name', 'vifbr', 'type', 'bridge');
  const before = ns.topology();
  await assert.rejects(svc.attachVif(vif, 'vifbr'), (e: unknown) => e instanceof XenApiError && e.code === 'CANNOT_PLUG_VIF' && e.params[0] === vif);
  assert.equal(store.field('VIF', vif, 'currently_attached'), false);
  assert.deepEqual(ns.topology(), before, 'nothing changed in the namespace');
  ns.ip('link', 'delete', 'dev', 'vifbr');
});

test('in namespace mode, a backend no hypervisor made gets a tap stand-in, deleted on detach', async (t) => {
  if (!ns) return t.skip('needs the rights to create network namespaces');
  const vif = newVif('2');
  assert.equal(ns.link('vif7.2'), undefined);
  await svc.attachVif(vif, 'vif7.2');
  const l = ns.link('vif7.2')!;
  assert.equal(l.ifalias, 'xapid:vif');
  assert.equal(l.linkinfo?.info_kind, 'tun');
  assert.equal(l.master, bridge);
  assert.equal(store.field('VIF', vif, 'currently_attached'), true);
  await svc.detachVif(vif, 'vif7.2');
  assert.equal(ns.link('vif7.2'), undefined, 'the stand-in is gone');
  assert.equal(store.field('VIF', vif, 'currently_attached'), false);
});

test('VIF.plug/unplug go through the driver\'s hot-plug hooks, then the bridge', async (t) => {
  if (!ns) return t.skip('needs the rights to create network namespaces');
  const vif = newVif('1');
  await assert.rejects(plugVif(svc, INTERNAL, vif), (e: unknown) => e instanceof XenApiError && e.code === 'NOT_IMPLEMENTED', 'the hot-plug hook\'s failure');
  assert.equal(store.field('VIF', vif, 'currently_attached'), false);
  assert.deepEqual(store.field('VIF', vif, 'current_operations'), {}, 'the failed plug left no operation behind');
  const made: string[] = [];
  hooks = {
    async plug(v, f) {
      assert.equal(v, vm);
      const name = `vif7.${store.field('VIF', f, 'device')}`;
      ns!.ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
      made.push(name);
      return name;
    },
    async unplug(_v, f) {
      ns!.ip('link', 'delete', 'dev', `vif7.${store.field('VIF', f, 'device')}`);
    },
  };
  try {
    await plugVif(svc, INTERNAL, vif);
    assert.deepEqual(made, ['vif7.1']);
    assert.equal(ns.link('vif7.1')?.master, bridge);
    assert.equal(store.field('VIF', vif, 'currently_attached'), true);
    await assert.rejects(plugVif(svc, INTERNAL, vif), (e: unknown) => e instanceof XenApiError && e.code === 'DEVICE_ALREADY_ATTACHED');
    await unplugVif(svc, INTERNAL, vif);
    assert.equal(ns.link('vif7.1'), undefined);
    assert.equal(store.field('VIF', vif, 'currently_attached'), false);
    assert.deepEqual(store.field('VIF', vif, 'current_operations'), {});
    await assert.rejects(unplugVif(svc, INTERNAL, vif), (e: unknown) => e instanceof XenApiError && e.code === 'DEVICE_ALREADY_DETACHED');
  } finally {
    hooks = noHooks;
  }
});
