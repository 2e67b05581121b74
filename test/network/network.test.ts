// Networking over the real RPC front end, with real Linux bridges, VLANs and bonds in a
// network namespace this test makes (veth pairs stand in for NICs): bootstrap of PIFs,
// networks and their bridges, VLANs, bonds, IP configuration, PIF plug/unplug/scan/
// forget/introduce, VIFs, and reconciliation at a restart. Every refusal is checked for
// its precise error and for leaving nothing behind, in the database or in the namespace.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { classes, type ClassModel } from '../../src/datamodel/model.js';
import { jsonCall, login, sampleValue, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { TestNamespace } from './netns.js';

class Failure extends Error {
  constructor(readonly description: string[]) {
    super(description.join(' '));
  }
}

let ns: TestNamespace | undefined;
let d: TestDaemon | undefined;
let stateDir: string;
let session: string;
let hostRef: string;
let vlanOk = false;
let bondOk = false;

const SKIP = 'needs the rights to create network namespaces (root or CAP_NET_ADMIN)';

async function call(method: string, ...params: unknown[]): Promise<any> {
  const r = await jsonCall(d!.url, method, [session, ...params]);
  if (r.error) throw new Failure([r.error.message, ...(r.error.data ?? [])]);
  return r.result;
}

async function fails(method: string, params: unknown[], code: string, expected?: unknown[]): Promise<string[]> {
  try {
    await call(method, ...params);
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    assert.equal(e.description[0], code, `${method}: ${e.message}`);
    if (expected) assert.deepEqual(e.description.slice(1), expected.map(String), `${method} error parameters`);
    return e.description.slice(1);
  }
  assert.fail(`${method} should have failed with ${code}`);
}

/** Everything a refused call must leave as it was: the network records and the namespace. */
async function world(): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const cls of ['network', 'PIF', 'VLAN', 'Bond', 'VIF']) out[cls] = await call(`${cls}.get_all_records`);
  out.host = ns!.topology();
  return out;
}

async function pifByDevice(device: string, vlan = -1): Promise<[string, any]> {
  const all = await call('PIF.get_all_records') as Record<string, any>;
  const found = Object.entries(all).find(([, p]) => p.device === device && p.VLAN === vlan && p.host === hostRef);
  assert.ok(found, `a PIF for ${device}${vlan >= 0 ? ` VLAN ${vlan}` : ''}`);
  return found;
}

function requiredArgs(c: ClassModel, realistic: Record<string, unknown>): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  c.storedFields.forEach((f, i) => {
    if (f.required) args[f.name] = f.name in realistic ? realistic[f.name] : sampleValue(f.type, i + 3);
  });
  return args;
}

const VM_ARGS = {
  memory_static_max: 2 ** 28, memory_dynamic_max: 2 ** 28, memory_dynamic_min: 2 ** 24, memory_static_min: 2 ** 24,
  VCPUs_max: 1, VCPUs_at_startup: 1, actions_after_crash: 'restart', is_a_template: false, other_config: {},
};

async function newVm(otherConfig: Record<string, string> = {}): Promise<string> {
  return call('VM.create', requiredArgs(classes.get('VM')!, { ...VM_ARGS, other_config: otherConfig }));
}

function vifArgs(vm: string, network: string, device: string, MAC: string): Record<string, unknown> {
  return { device, network, VM: vm, MAC, MTU: 1500, other_config: {}, qos_algorithm_type: '', qos_algorithm_params: {} };
}

before(async () => {
  ns = TestNamespace.create();
  if (!ns) return;
  // eth0..eth2 stand in for NICs; eth2's far end stays down, so it has no carrier.
  ns.addNic('eth0', { mac: '02:00:00:00:00:10' });
  ns.addNic('eth1', { mac: '02:00:00:00:00:11' });
  ns.addNic('eth2', { mac: '02:00:00:00:00:12', carrier: false });
  vlanOk = ns.supports('vlan');
  bondOk = ns.supports('bond');
  stateDir = tempDir('xapid-net-');
  d = await startDaemon({ stateDir, args: ['--network-mode', 'namespace', '--netns', ns.name] });
  session = await login(d.url);
  hostRef = (await call('host.get_all'))[0];
});

after(async () => {
  await d?.stop();
  ns?.delete();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test('first start: one PIF, network and bridge per NIC, the management PIF marked, metrics from the kernel', async (t) => {
  if (!ns) return t.skip(SKIP);
  const pifs = await call('PIF.get_all_records') as Record<string, any>;
  const mine = Object.entries(pifs).filter(([, p]) => p.host === hostRef).sort(([, a], [, b]) => a.device.localeCompare(b.device));
  assert.deepEqual(mine.map(([, p]) => p.device), ['eth0', 'eth1', 'eth2']);
  assert.deepEqual((await call('host.get_PIFs', hostRef)).sort(), mine.map(([r]) => r).sort(), 'host.PIFs');
  for (const [ref, p] of mine) {
    const i = p.device.slice(3);
    assert.equal(p.MAC, `02:00:00:00:00:1${i}`);
    assert.equal(p.MTU, 1500);
    assert.equal(p.VLAN, -1);
    assert.equal(p.physical, true);
    assert.equal(p.currently_attached, true);
    assert.equal(p.management, p.device === 'eth0');
    const net = await call('network.get_record', p.network);
    assert.equal(net.bridge, `xenbr${i}`);
    assert.equal(net.name_label, `Pool-wide network associated with eth${i}`);
    assert.deepEqual(net.PIFs, [ref], 'network.PIFs');
    // On the "host": the bridge exists and the NIC is its port.
    assert.equal(ns.link(`xenbr${i}`)?.linkinfo?.info_kind, 'bridge');
    assert.match(ns.detail(p.device), new RegExp(`master xenbr${i} `));
    const m = await call('PIF_metrics.get_record', p.metrics);
    assert.equal(m.carrier, p.device !== 'eth2', `${p.device} carrier as the kernel reports it`);
    if (m.carrier) {
      // Speed and duplex as sysfs has them (a veth says 10000 Mbit/s, full duplex).
      const [speed, duplex]: string[] = ns.exec('sh', '-c', `cat /sys/class/net/${p.device}/speed /sys/class/net/${p.device}/duplex`).trim().split('\n');
      assert.equal(m.speed, Number(speed));
      assert.equal(m.duplex, duplex === 'full');
    }
  }
});

test('network.create allocates xapiN bridges; destroy removes them; refused while PIFs or VIFs use it', async (t) => {
  if (!ns) return t.skip(SKIP);
  const a = await call('network.create', { name_label: 'a', name_description: '', other_config: {} });
  const b = await call('network.create', { name_label: 'b', name_description: '', other_config: {} });
  const [ba, bb] = [await call('network.get_bridge', a), await call('network.get_bridge', b)];
  assert.match(ba, /^xapi\d+$/);
  assert.match(bb, /^xapi\d+$/);
  assert.notEqual(ba, bb);
  assert.equal(ns.link(ba)?.linkinfo?.info_kind, 'bridge');
  assert.match(ns.detail(bb), /bridge /);
  assert.deepEqual(await call('network.get_allowed_operations', a), ['attaching']);

  const before = await world();
  await fails('network.create', [{ name_label: 'c', name_description: '', other_config: {}, bridge: 'xenbr0' }], 'BRIDGE_NAME_EXISTS', ['xenbr0']);
  await fails('network.create', [{ name_label: 'c', name_description: '', other_config: {}, bridge: 'eth1' }], 'BRIDGE_NAME_EXISTS', ['eth1']);
  await fails('network.create', [{ name_label: 'c', name_description: '', other_config: {}, bridge: 'no/slash' }], 'INVALID_VALUE', ['bridge', 'no/slash']);
  await fails('network.create', [{ name_label: 'c', name_description: '' }], 'FIELD_TYPE_ERROR', ['other_config']);
  const [, eth0] = await pifByDevice('eth0');
  const [eth0Ref] = await pifByDevice('eth0');
  await fails('network.destroy', [eth0.network], 'NETWORK_CONTAINS_PIF', [eth0Ref]);
  assert.deepEqual(await world(), before, 'refused calls changed nothing');

  // A named bridge is used as given.
  const named = await call('network.create', { name_label: 'named', name_description: '', other_config: {}, bridge: 'brtest' });
  assert.equal(ns.link('brtest')?.linkinfo?.info_kind, 'bridge');

  const vm = await newVm();
  const vif = await call('VIF.create', vifArgs(vm, a, '0', ''));
  await fails('network.destroy', [a], 'NETWORK_CONTAINS_VIF', [vif]);
  await call('VIF.destroy', vif);
  await call('VM.destroy', vm);
  for (const [ref, bridge] of [[a, ba], [b, bb], [named, 'brtest']]) {
    await call('network.destroy', ref);
    assert.equal(ns.link(bridge), undefined, `${bridge} is gone`);
  }
});

test('VLANs: tags checked, one per device and tag, a real 802.1Q device on the network\'s bridge', async (t) => {
  if (!ns) return t.skip(SKIP);
  const net = await call('network.create', { name_label: 'vlan 5', name_description: '', other_config: {} });
  const bridge = await call('network.get_bridge', net);
  const [eth1] = await pifByDevice('eth1');
  const before = await world();
  await fails('VLAN.create', [eth1, 4095, net], 'VLAN_TAG_INVALID', ['4095']);
  await fails('VLAN.create', [eth1, -1, net], 'VLAN_TAG_INVALID', ['-1']);
  await fails('PIF.create_VLAN', ['eth1', net, hostRef, 5000], 'VLAN_TAG_INVALID', ['5000']);
  await fails('pool.create_VLAN', ['eth1', net, 4095], 'VLAN_TAG_INVALID', ['4095']);
  await fails('PIF.create_VLAN', ['eth9', net, hostRef, 5], 'INVALID_VALUE', ['device', 'eth9']);
  const [, eth0rec] = await pifByDevice('eth0');
  await fails('VLAN.create', [eth1, 5, eth0rec.network], 'NETWORK_ALREADY_CONNECTED');
  assert.deepEqual(await world(), before, 'refused calls changed nothing');

  if (!vlanOk) {
    // This kernel has no 802.1Q support: the failure is precise and fully undone.
    const params = await fails('VLAN.create', [eth1, 5, net], 'PIF_CONFIGURATION_ERROR');
    assert.equal(params[0], eth1);
    assert.match(params[1]!, /kernel lacks/);
    assert.deepEqual(await world(), before, 'nothing half-made on the host or in the database');
    t.diagnostic('the kernel here cannot make VLAN devices: checked the refusal and the undo only');
    await call('network.destroy', net);
    return;
  }
  const vlan = await call('VLAN.create', eth1, 5, net);
  const v = await call('VLAN.get_record', vlan);
  assert.equal(v.tag, 5);
  assert.equal(v.tagged_PIF, eth1);
  const u = await call('PIF.get_record', v.untagged_PIF);
  assert.deepEqual([u.device, u.VLAN, u.MAC, u.physical, u.currently_attached, u.network, u.VLAN_master_of], ['eth1', 5, 'fe:ff:ff:ff:ff:ff', false, true, net, vlan]);
  assert.deepEqual(await call('PIF.get_VLAN_slave_of', eth1), [vlan]);
  const text = ns.detail('eth1.5');
  assert.match(text, /vlan protocol 802\.1Q id 5/);
  assert.match(text, new RegExp(`master ${bridge} `));

  // The same tag on the same device again, through each entry point.
  const other = await call('network.create', { name_label: 'other', name_description: '', other_config: {} });
  const mid = await world();
  await fails('VLAN.create', [eth1, 5, other], 'PIF_VLAN_EXISTS', ['eth1']);
  await fails('PIF.create_VLAN', ['eth1', other, hostRef, 5], 'PIF_VLAN_EXISTS', ['eth1']);
  await fails('VLAN.create', [v.untagged_PIF, 7, other], 'PIF_IS_VLAN', [v.untagged_PIF]);
  await fails('PIF.forget', [eth1], 'PIF_VLAN_STILL_EXISTS', [eth1]);
  assert.deepEqual(await world(), mid);

  // pool.create_VLAN_from_PIF gives the same result on another tag.
  const [pif7] = await call('pool.create_VLAN_from_PIF', eth1, other, 7);
  assert.equal(await call('PIF.get_VLAN', pif7), 7);
  assert.match(ns.detail('eth1.7'), /vlan protocol 802\.1Q id 7/);
  await call('PIF.destroy', pif7);
  assert.equal(ns.link('eth1.7'), undefined);

  await call('VLAN.destroy', vlan);
  assert.equal(ns.link('eth1.5'), undefined, 'the 802.1Q device is gone');
  await fails('PIF.get_record', [v.untagged_PIF], 'HANDLE_INVALID');
  await call('network.destroy', other);
  await call('network.destroy', net);
});

test('bonds: at least two members, none bonded already; a real Linux bond on the network\'s bridge', async (t) => {
  if (!ns) return t.skip(SKIP);
  const net = await call('network.create', { name_label: 'bond', name_description: '', other_config: {} });
  const bridge = await call('network.get_bridge', net);
  const [eth1] = await pifByDevice('eth1');
  const [eth2] = await pifByDevice('eth2');
  const before = await world();
  await fails('Bond.create', [net, [eth1], '', 'active-backup', {}], 'PIF_BOND_NEEDS_MORE_MEMBERS', []);
  await fails('Bond.create', [net, [eth1, eth1], '', 'active-backup', {}], 'PIF_BOND_NEEDS_MORE_MEMBERS', []);
  await fails('Bond.create', [net, [eth1, eth2], 'not-a-mac', 'active-backup', {}], 'MAC_INVALID', ['not-a-mac']);
  await fails('Bond.create', [net, [eth1, eth2], '', 'active-backup', { updelay: 'soon' }], 'INVALID_VALUE', ['updelay', 'soon']);
  const [, eth1rec] = await pifByDevice('eth1');
  await fails('Bond.create', [eth1rec.network, [eth1, eth2], '', 'active-backup', {}], 'NETWORK_ALREADY_CONNECTED');
  assert.deepEqual(await world(), before, 'refused calls changed nothing');

  if (!bondOk) {
    // This kernel has no bonding: the failure is precise, and eth1/eth2 are back on their bridges.
    const params = await fails('Bond.create', [net, [eth1, eth2], '', 'active-backup', {}], 'PIF_CONFIGURATION_ERROR');
    assert.equal(params[0], eth1);
    assert.match(params[1]!, /kernel lacks/);
    assert.deepEqual(await world(), before, 'nothing half-made on the host or in the database');
    assert.match(ns.detail('eth1'), /master xenbr1 /);
    assert.match(ns.detail('eth2'), /master xenbr2 /);
    t.diagnostic('the kernel here cannot make bonds: checked the refusal and the undo only (see the none-mode test for the bonded checks)');
    await call('network.destroy', net);
    return;
  }
  const bond = await call('Bond.create', net, [eth1, eth2], '', 'active-backup', {});
  const b = await call('Bond.get_record', bond);
  assert.deepEqual([...b.slaves].sort(), [eth1, eth2].sort());
  const master = await call('PIF.get_record', b.master);
  assert.equal(master.device, 'bond0');
  assert.equal(master.MAC, '02:00:00:00:00:11');
  assert.equal(master.network, net);
  assert.match(ns.detail('bond0'), /bond mode active-backup/);
  assert.match(ns.detail('bond0'), new RegExp(`master ${bridge} `));
  assert.match(ns.detail('eth1'), /master bond0 /);
  assert.match(ns.detail('eth2'), /master bond0 /);
  const [eth0] = await pifByDevice('eth0');
  const net2 = await call('network.create', { name_label: 'bond 2', name_description: '', other_config: {} });
  const mid = await world();
  await fails('Bond.create', [net2, [eth1, eth0], '', 'active-backup', {}], 'PIF_ALREADY_BONDED', [eth1]);
  await fails('PIF.plug', [eth1], 'CANNOT_PLUG_BOND_SLAVE', [eth1]);
  assert.deepEqual(await world(), mid);
  await call('Bond.destroy', bond);
  assert.equal(ns.link('bond0'), undefined);
  assert.match(ns.detail('eth1'), /master xenbr1 /);
  await call('network.destroy', net2);
  await call('network.destroy', net);
});

test('PIF.reconfigure_ip: checked addresses, applied with ip on the bridge, management kept', async (t) => {
  if (!ns) return t.skip(SKIP);
  const [eth1] = await pifByDevice('eth1');
  const [eth0] = await pifByDevice('eth0');
  const before = await world();
  await fails('PIF.reconfigure_ip', [eth1, 'Static', '192.0.2.10', '', '', ''], 'INVALID_IP_ADDRESS_SPECIFIED', ['netmask']);
  await fails('PIF.reconfigure_ip', [eth1, 'Static', '192.0.2.300', '255.255.255.0', '', ''], 'INVALID_IP_ADDRESS_SPECIFIED', ['IP']);
  await fails('PIF.reconfigure_ip', [eth1, 'Static', '192.0.2.10', '255.0.255.0', '', ''], 'INVALID_IP_ADDRESS_SPECIFIED', ['netmask']);
  await fails('PIF.reconfigure_ip', [eth1, 'Static', '192.0.2.10', '255.255.255.0', 'gw', ''], 'INVALID_IP_ADDRESS_SPECIFIED', ['gateway']);
  await fails('PIF.reconfigure_ip', [eth1, 'DHCP', 'x', '', '', ''], 'INVALID_IP_ADDRESS_SPECIFIED', ['IP']);
  await fails('PIF.reconfigure_ip', [eth1, 'Manual', '', '', '', ''], 'INVALID_VALUE');
  await fails('PIF.reconfigure_ip', [eth0, 'None', '', '', '', ''], 'PIF_IS_MANAGEMENT_INTERFACE', [eth0]);
  assert.deepEqual(await world(), before);
  assert.deepEqual(ns.addresses('xenbr1'), []);

  await call('PIF.reconfigure_ip', eth1, 'Static', '192.0.2.10', '255.255.255.0', '192.0.2.1', '192.0.2.53');
  const p = await call('PIF.get_record', eth1);
  assert.deepEqual([p.ip_configuration_mode, p.IP, p.netmask, p.gateway, p.DNS], ['Static', '192.0.2.10', '255.255.255.0', '192.0.2.1', '192.0.2.53']);
  assert.deepEqual(ns.addresses('xenbr1'), ['192.0.2.10/24']);
  await call('PIF.reconfigure_ip', eth1, 'Static', '198.51.100.7', '255.255.0.0', '', '');
  assert.deepEqual(ns.addresses('xenbr1'), ['198.51.100.7/16'], 'the old address is replaced');
  await call('PIF.reconfigure_ip', eth1, 'None', '', '', '', '');
  assert.deepEqual(ns.addresses('xenbr1'), []);
  assert.equal(await call('PIF.get_ip_configuration_mode', eth1), 'None');
});

test('PIF.unplug/plug take the NIC off its bridge and back; the management PIF stays', async (t) => {
  if (!ns) return t.skip(SKIP);
  const [eth2] = await pifByDevice('eth2');
  const [eth0] = await pifByDevice('eth0');
  await fails('PIF.unplug', [eth0], 'PIF_IS_MANAGEMENT_INTERFACE', [eth0]);
  await call('PIF.unplug', eth2);
  assert.equal(await call('PIF.get_currently_attached', eth2), false);
  assert.equal(ns.link('eth2')?.master, undefined);
  assert.ok(!ns.link('eth2')!.flags.includes('UP'));
  await call('PIF.plug', eth2);
  assert.equal(await call('PIF.get_currently_attached', eth2), true);
  assert.equal(ns.link('eth2')?.master, 'xenbr2');
  assert.ok(ns.link('eth2')!.flags.includes('UP'));
  await fails('PIF.destroy', [eth2], 'PIF_IS_PHYSICAL', [eth2]);
});

test('PIF.scan finds a new NIC; PIF.introduce checks; PIF.forget', async (t) => {
  if (!ns) return t.skip(SKIP);
  ns.addNic('eth3', { mac: '02:00:00:00:00:13' });
  await call('PIF.scan', hostRef);
  const [eth3, rec] = await pifByDevice('eth3');
  assert.equal(rec.MAC, '02:00:00:00:00:13');
  assert.equal(await call('network.get_bridge', rec.network), 'xenbr3');
  assert.match(ns.detail('eth3'), /master xenbr3 /);
  await call('PIF.scan', hostRef);
  assert.equal(Object.values(await call('PIF.get_all_records')).filter((p: any) => p.device === 'eth3').length, 1, 'a second scan adds nothing');

  const before = await world();
  await fails('PIF.introduce', [hostRef, 'zz:00:00:00:00:13', 'eth3', true], 'MAC_INVALID', ['zz:00:00:00:00:13']);
  await fails('PIF.introduce', [hostRef, '02:00:00:00:00:13', 'eth3', true], 'DUPLICATE_PIF_DEVICE_NAME', ['eth3']);
  await fails('PIF.introduce', [hostRef, '02:00:00:00:00:99', 'eth4', true], 'MAC_DOES_NOT_EXIST', ['02:00:00:00:00:99']);
  assert.deepEqual(await world(), before);

  await call('PIF.forget', eth3);
  await fails('PIF.get_record', [eth3], 'HANDLE_INVALID');
  assert.equal(ns.link('eth3')?.master, undefined, 'the forgotten NIC left its bridge');
  // Introduced again by MAC and name (with the miami arity, no `managed`).
  const again = await call('PIF.introduce', hostRef, '02:00:00:00:00:13', 'eth3');
  assert.equal(await call('PIF.get_network', again), rec.network, 'back on the network of its bridge');
  assert.equal(ns.link('eth3')?.master, 'xenbr3');
});

test('VIFs: devices, MACs (random or from mac_seed), checks, and plug refused for a halted VM', async (t) => {
  if (!ns) return t.skip(SKIP);
  const [, eth0] = await pifByDevice('eth0');
  const net = eth0.network;
  const vm = await newVm();
  assert.deepEqual(await call('VM.get_allowed_VIF_devices', vm), ['0', '1', '2', '3', '4', '5', '6']);
  const v0 = await call('VIF.create', vifArgs(vm, net, '0', ''));
  const r0 = await call('VIF.get_record', v0);
  assert.match(r0.MAC, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const b0 = Number.parseInt(r0.MAC.slice(0, 2), 16);
  assert.equal(b0 & 2, 2, 'locally administered');
  assert.equal(b0 & 1, 0, 'unicast');
  assert.deepEqual(r0.qos_supported_algorithms, ['ratelimit']);
  assert.deepEqual(r0.allowed_operations, ['attach'], 'no plug/unplug while the VM is halted');
  const v1 = await call('VIF.create', vifArgs(vm, net, '1', 'AA:BB:CC:00:11:22'));
  assert.equal(await call('VIF.get_MAC', v1), 'aa:bb:cc:00:11:22');
  assert.deepEqual(await call('VM.get_allowed_VIF_devices', vm), ['2', '3', '4', '5', '6']);

  const before = await world();
  await fails('VIF.create', [vifArgs(vm, net, '1', '')], 'DEVICE_ALREADY_EXISTS', ['1']);
  await fails('VIF.create', [vifArgs(vm, net, 'eth0', '')], 'INVALID_DEVICE', ['eth0']);
  await fails('VIF.create', [vifArgs(vm, net, '2', '00:16:3e:zz:00:01')], 'MAC_INVALID', ['00:16:3e:zz:00:01']);
  await fails('VIF.create', [vifArgs(vm, net, '2', '00:16:3e:00:01')], 'MAC_INVALID', ['00:16:3e:00:01']);
  await fails('VIF.create', [{ ...vifArgs(vm, net, '2', ''), MTU: 20 }], 'INVALID_VALUE', ['MTU', '20']);
  await fails('VIF.plug', [v0], 'VM_BAD_POWER_STATE', [vm, 'running', 'halted']);
  await fails('VIF.unplug', [v0], 'VM_BAD_POWER_STATE', [vm, 'running', 'halted']);
  assert.deepEqual(await world(), before, 'refused calls changed nothing');

  // With a mac_seed, the MAC follows from the seed and the device number.
  const seed = 'f0e1d2c3-seed';
  const seeded = await newVm({ mac_seed: seed });
  const v3 = await call('VIF.create', vifArgs(seeded, net, '3', ''));
  let h: Buffer = Buffer.from(seed);
  for (let i = 0; i < 7; i++) h = createHash('md5').update(h).digest();
  const h2 = createHash('md5').update(h).digest();
  // 2·device+1 = 7 rounds of MD5 over the seed; bytes 0–3 of that, 1–2 of its MD5.
  const bytes = [(h[0]! | 0x02) & 0xfe, h[1]!, h[2]!, h[3]!, h2[1]!, h2[2]!];
  assert.equal(await call('VIF.get_MAC', v3), bytes.map((x) => x.toString(16).padStart(2, '0')).join(':'));

  for (const v of [v0, v1, v3]) await call('VIF.destroy', v);
  await call('VM.destroy', vm);
  await call('VM.destroy', seeded);
});

test('a restart reconciles: a vanished bridge is recreated, a vanished NIC leaves its PIF unplugged, leftovers go', async (t) => {
  if (!ns) return t.skip(SKIP);
  const net = await call('network.create', { name_label: 'internal', name_description: '', other_config: {} });
  const bridge = await call('network.get_bridge', net);
  const [eth2] = await pifByDevice('eth2');
  await d!.stop();
  // Meanwhile, on the "host": the internal bridge and xenbr1 vanish, eth2 is unplugged
  // from the machine, and a bridge xapid made earlier is left without a network.
  ns.ip('link', 'delete', 'dev', bridge);
  ns.ip('link', 'delete', 'dev', 'xenbr1');
  ns.ip('link', 'delete', 'dev', 'eth2');
  ns.ip('link', 'add', 'name', 'xapi99', 'type', 'bridge');
  ns.ip('link', 'set', 'dev', 'xapi99', 'alias', 'xapid:bridge');
  ns.ip('link', 'add', 'name', 'brother', 'type', 'bridge');

  d = await startDaemon({ stateDir, args: ['--network-mode', 'namespace', '--netns', ns.name] });
  session = await login(d.url);
  assert.equal(ns.link(bridge)?.linkinfo?.info_kind, 'bridge', 'the internal network\'s bridge is back');
  assert.equal(ns.link('eth1')?.master, 'xenbr1', 'xenbr1 is back with eth1 in it');
  assert.equal(await call('PIF.get_currently_attached', eth2), false, 'the PIF of the vanished NIC is unplugged');
  assert.equal(ns.link('xapi99'), undefined, 'a leftover xapid bridge is removed');
  assert.ok(ns.link('brother'), 'a bridge xapid did not make is left alone');
  await call('network.destroy', net);
});
