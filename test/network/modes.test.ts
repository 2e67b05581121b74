// The network modes: by default the daemon makes its own namespace (stand-in NICs,
// bridges), finds it again after a restart and removes it when it stops; in `none` mode
// everything stays in the database, where the bond and VLAN checks still hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { jsonCall, login, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { namespaceName } from '../../src/network/namespace.js';
import { TestNamespace, namespaceExists } from './netns.js';

class Failure extends Error {
  constructor(readonly description: string[]) {
    super(description.join(' '));
  }
}

function client(d: TestDaemon, session: string) {
  const call = async (method: string, ...params: unknown[]): Promise<any> => {
    const r = await jsonCall(d.url, method, [session, ...params]);
    if (r.error) throw new Failure([r.error.message, ...(r.error.data ?? [])]);
    return r.result;
  };
  const fails = async (method: string, params: unknown[], expected: string[]) => {
    await assert.rejects(call(method, ...params), (e: unknown) => {
      assert.ok(e instanceof Failure, String(e));
      assert.deepEqual(e.description, expected);
      return true;
    });
  };
  return { call, fails };
}

/** `ip -d link` of the daemon's own namespace, read-only, as a person would inspect it. */
function nsLinks(name: string): Map<string, any> {
  const list = JSON.parse(execFileSync('ip', ['-n', name, '-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as any[];
  return new Map(list.map((l) => [l.ifname, l]));
}

const canNetns = (() => {
  const ns = TestNamespace.create();
  ns?.delete();
  return Boolean(ns);
})();

test('default mode: the daemon\'s own namespace with stand-in NICs, found again after a restart, removed at stop', { skip: canNetns ? false : 'needs the rights to create network namespaces' }, async (t) => {
  const stateDir = tempDir('xapid-netmode-');
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const name = namespaceName(stateDir);
  assert.equal(namespaceExists(name), false);

  const d1 = await startDaemon({ stateDir, args: ['--sim-nics', '3'] });
  t.after(() => d1.stop());
  assert.ok(d1.logs.some((l) => l.includes('network namespace created') && l.includes(name)), 'the log names the namespace');
  assert.equal(namespaceExists(name), true);
  const api = client(d1, await login(d1.url));
  const pifs = Object.values(await api.call('PIF.get_all_records') as Record<string, any>).sort((a, b) => a.device.localeCompare(b.device));
  assert.deepEqual(pifs.map((p) => p.device), ['eth0', 'eth1', 'eth2']);
  assert.deepEqual(pifs.map((p) => p.management), [true, false, false]);
  let links = nsLinks(name);
  for (const p of pifs) {
    const i = p.device.slice(3);
    assert.equal(links.get(p.device)?.address, p.MAC, 'the stand-in NIC has the PIF\'s MAC');
    assert.equal(links.get(p.device)?.master, `xenbr${i}`);
    assert.equal(links.get(`xenbr${i}`)?.linkinfo?.info_kind, 'bridge');
  }
  const net = await api.call('network.create', { name_label: 'internal', name_description: '', other_config: {} });
  const bridge = await api.call('network.get_bridge', net);
  assert.equal(nsLinks(name).get(bridge)?.linkinfo?.info_kind, 'bridge');
  assert.equal(await d1.stop(), 0);
  assert.equal(namespaceExists(name), false, 'the namespace went with the daemon');

  // A restart makes the namespace again from the database: same NICs, same MACs, the bridges.
  const d2 = await startDaemon({ stateDir });
  t.after(() => d2.stop());
  assert.equal(namespaceExists(name), true);
  const api2 = client(d2, await login(d2.url));
  assert.equal(Object.keys(await api2.call('PIF.get_all_records')).length, 3, 'no PIF was added');
  links = nsLinks(name);
  for (const p of pifs) {
    assert.equal(links.get(p.device)?.address, p.MAC);
    assert.equal(links.get(p.device)?.master, `xenbr${p.device.slice(3)}`);
  }
  assert.equal(links.get(bridge)?.linkinfo?.info_kind, 'bridge', 'the internal network\'s bridge is back');
  assert.equal(await d2.stop(), 0);
  assert.equal(namespaceExists(name), false);
});

/** The PIDs of processes whose command line holds every one of `words`. */
function processesWith(...words: string[]): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (words.every((w) => cmd.includes(w))) out.push(Number(p));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

test('a daemon killed with SIGKILL does not leave its namespace behind', { skip: canNetns ? false : 'needs the rights to create network namespaces' }, async (t) => {
  const stateDir = tempDir('xapid-netkill-');
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const name = namespaceName(stateDir);
  const d = await startDaemon({ stateDir, args: ['--sim-nics', '1'] });
  t.after(() => d.stop());
  assert.equal(namespaceExists(name), true);
  const guards = processesWith('xapid-netns-guard', name);
  assert.equal(guards.length, 1, `one guard watches the namespace:\n${d.logs.join('\n')}`);
  await d.stop('SIGKILL');
  // The guard acts once it sees the daemon's pipe close; wait for it to finish.
  while (existsSync(`/proc/${guards[0]}`)) await new Promise((r) => setTimeout(r, 50));
  assert.equal(namespaceExists(name), false, 'the guard removed the namespace');
});

test('none mode: networking in the database only, with the same checks', async (t) => {
  const stateDir = tempDir('xapid-netnone-');
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const d = await startDaemon({ stateDir, args: ['--network-mode', 'none', '--sim-nics', '3'] });
  t.after(() => d.stop());
  assert.ok(d.logs.some((l) => l.includes('kept in the database only')));
  assert.equal(namespaceExists(namespaceName(stateDir)), false, 'no namespace was made');
  const { call, fails } = client(d, await login(d.url));
  const host = (await call('host.get_all'))[0];
  const all = await call('PIF.get_all_records') as Record<string, any>;
  const byDev = (dev: string) => Object.entries(all).find(([, p]) => p.device === dev)![0];
  const [eth0, eth1, eth2] = ['eth0', 'eth1', 'eth2'].map(byDev) as [string, string, string];
  assert.equal(all[eth0].management, true);
  for (const p of Object.values(all)) {
    assert.match(p.MAC, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.equal(p.currently_attached, true);
  }

  const net = await call('network.create', { name_label: 'v', name_description: '', other_config: {} });
  assert.match(await call('network.get_bridge', net), /^xapi\d+$/);
  const vlan = await call('VLAN.create', eth1, 5, net);
  const net2 = await call('network.create', { name_label: 'v2', name_description: '', other_config: {} });
  await fails('VLAN.create', [eth1, 5, net2], ['PIF_VLAN_EXISTS', 'eth1']);
  await fails('PIF.create_VLAN', ['eth1', net2, host, 5], ['PIF_VLAN_EXISTS', 'eth1']);
  // A PIF carrying a VLAN cannot be bonded.
  await fails('Bond.create', [net2, [eth1, eth2], '', 'active-backup', {}], ['PIF_VLAN_EXISTS', 'eth1']);

  // Bonding moves the management interface to the bond, and back on destroy.
  await call('PIF.reconfigure_ip', eth0, 'Static', '192.0.2.5', '255.255.255.0', '', '');
  const bond = await call('Bond.create', net2, [eth0, eth2], '', 'lacp', { hashing_algorithm: 'src_mac' });
  const master = await call('Bond.get_master', bond);
  const m = await call('PIF.get_record', master);
  assert.deepEqual([m.device, m.MAC, m.management, m.ip_configuration_mode, m.IP], ['bond0', all[eth0].MAC, true, 'Static', '192.0.2.5']);
  assert.equal(m.other_config['bond-mode'], 'lacp');
  assert.equal(await call('PIF.get_management', eth0), false);
  assert.equal(await call('PIF.get_bond_slave_of', eth2), bond);
  const net3 = await call('network.create', { name_label: 'v3', name_description: '', other_config: {} });
  const before = await call('PIF.get_all_records');
  await fails('Bond.create', [net3, [eth2, eth1], '', 'active-backup', {}], ['PIF_ALREADY_BONDED', eth2]);
  await fails('Bond.create', [net3, [master, eth1], '', 'active-backup', {}], ['PIF_ALREADY_BONDED', master]);
  // miami's three-argument form: mode and properties take their defaults.
  await fails('Bond.create', [net3, [eth2], ''], ['PIF_BOND_NEEDS_MORE_MEMBERS']);
  await fails('PIF.reconfigure_ip', [eth2, 'DHCP', '', '', '', ''], ['PIF_ALREADY_BONDED', eth2]);
  assert.deepEqual(await call('PIF.get_all_records'), before, 'refused calls changed nothing');

  await call('Bond.destroy', bond);
  const e0 = await call('PIF.get_record', eth0);
  assert.deepEqual([e0.management, e0.ip_configuration_mode, e0.IP, e0.bond_slave_of, e0.currently_attached], [true, 'Static', '192.0.2.5', 'OpaqueRef:NULL', true]);
  await fails('PIF.get_record', [master], ['HANDLE_INVALID', 'PIF', master]);
  await call('VLAN.destroy', vlan);
  // The pool-wide forms make the VLAN on this (the only) host.
  const [byDevice] = await call('pool.create_VLAN', 'eth1', net, 9);
  const [fromPif] = await call('pool.create_VLAN_from_PIF', eth1, net3, 10);
  assert.deepEqual([await call('PIF.get_VLAN', byDevice), await call('PIF.get_VLAN', fromPif)], [9, 10]);
  assert.deepEqual([await call('PIF.get_device', byDevice), await call('PIF.get_network', fromPif)], ['eth1', net3]);
  await fails('pool.create_VLAN', ['eth1', net2, 9], ['PIF_VLAN_EXISTS', 'eth1']);
  await call('PIF.destroy', byDevice);
  await call('PIF.destroy', fromPif);
  for (const n of [net, net2, net3]) await call('network.destroy', n);
});
