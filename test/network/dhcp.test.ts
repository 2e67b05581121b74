// PIF.reconfigure_ip with DHCP, for real: the daemon works in a namespace this test
// makes (--netns), whose stand-in NICs' far ends sit in a second namespace with a real
// DHCP server (dnsmasq). A DHCP PIF's bridge gets a lease from the server's range and
// the PIF records it as xapi does; Static, None, unplug and the daemon's stop end the
// client and its lease; a daemon killed outright takes its clients with it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { jsonCall, login, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { TestNamespace } from './netns.js';
import { TestDhcpServer, hasDnsmasq, ipNumber, until } from './dhcpd.js';

let ns: TestNamespace | undefined;
let srv: TestNamespace | undefined;
let server: TestDhcpServer | undefined;
let d: TestDaemon | undefined;
let stateDir: string;
let session: string;

const SKIP = !hasDnsmasq ? 'needs dnsmasq (Debian package dnsmasq-base)' : undefined;
const NONS = 'needs the rights to create network namespaces (root or CAP_NET_ADMIN)';

async function call(method: string, ...params: unknown[]): Promise<any> {
  const r = await jsonCall(d!.url, method, [session, ...params]);
  if (r.error) throw new Error([r.error.message, ...(r.error.data ?? [])].join(' '));
  return r.result;
}

async function pif(device: string): Promise<string> {
  const all = await call('PIF.get_all_records') as Record<string, any>;
  return Object.entries(all).find(([, p]) => p.device === device)![0];
}

const clients = (bridge: string): number[] => ns!.dhcpClients(bridge);

const inRange = (ip: string, from: string, to: string) => ipNumber(ip) >= ipNumber(from) && ipNumber(ip) <= ipNumber(to);

function dynamic(dev: string): boolean[] {
  const list = JSON.parse(ns!.ip('-j', '-4', 'addr', 'show', 'dev', dev)) as Array<{ addr_info: Array<{ scope: string; dynamic?: boolean }> }>;
  return (list[0]?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => Boolean(a.dynamic));
}

async function startXapid(): Promise<void> {
  d = await startDaemon({ stateDir, args: ['--network-mode', 'namespace', '--netns', ns!.name] });
  session = await login(d.url);
}

before(async () => {
  if (SKIP) return;
  ns = TestNamespace.create();
  srv = TestNamespace.create();
  if (!ns || !srv) return;
  // eth0 (the management PIF) and eth1, wired to the server's namespace.
  ns.addNic('eth0', { mac: '02:00:00:00:00:20' });
  ns.addNic('eth1', { mac: '02:00:00:00:00:21' });
  for (const [i, nic] of ['eth0', 'eth1'].entries()) {
    ns.moveLink(`${nic}-p`, srv);
    srv.ip('addr', 'add', `10.77.${i}.1/24`, 'dev', `${nic}-p`);
    srv.ip('link', 'set', 'dev', `${nic}-p`, 'up');
  }
  stateDir = tempDir('xapid-dhcp-');
  server = await TestDhcpServer.start(srv, [
    { dev: 'eth0-p', range: ['10.77.0.100', '10.77.0.150'], router: '10.77.0.1', dns: ['10.77.0.53', '10.77.0.54'] },
    { dev: 'eth1-p', range: ['10.77.1.100', '10.77.1.150'], router: '10.77.1.1', dns: ['10.77.1.53'] },
  ], stateDir);
  await startXapid();
});

after(async () => {
  await d?.stop();
  await server?.stop();
  ns?.delete();
  srv?.delete();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test('reconfigure_ip DHCP: a client on the bridge; the lease on the bridge and in the PIF record, gateway and DNS on the management PIF', { skip: SKIP }, async (t) => {
  if (!ns) return t.skip(NONS);
  const eth1 = await pif('eth1');
  await call('PIF.reconfigure_ip', eth1, 'DHCP', '', '', '', '');
  assert.equal(clients('xenbr1').length, 1, 'one DHCP client on xenbr1');
  const [addr] = ns.addresses('xenbr1');
  assert.ok(addr, 'the bridge has an address');
  const [ip, prefix] = addr.split('/') as [string, string];
  assert.ok(inRange(ip, '10.77.1.100', '10.77.1.150'), `${ip} is from the server's range`);
  assert.equal(prefix, '24');
  assert.deepEqual(dynamic('xenbr1'), [true], 'a lease, with a lifetime');
  assert.ok(server!.leases().some((l) => l.includes('02:00:00:00:00:21') && l.includes(ip)), 'the server leased it to the bridge\'s MAC');
  const p = await call('PIF.get_record', eth1);
  assert.deepEqual([p.ip_configuration_mode, p.IP, p.netmask, p.gateway, p.DNS], ['DHCP', ip, '255.255.255.0', '', ''], 'no gateway or DNS on a non-management PIF, as xapi');
  assert.doesNotMatch(ns.ip('-4', 'route', 'show', 'default'), /xenbr1/, 'no default route through it');

  const eth0 = await pif('eth0');
  await call('PIF.reconfigure_ip', eth0, 'DHCP', '', '', '', '');
  const m = await call('PIF.get_record', eth0);
  assert.ok(inRange(m.IP, '10.77.0.100', '10.77.0.150'), m.IP);
  assert.deepEqual(ns.addresses('xenbr0'), [`${m.IP}/24`]);
  assert.deepEqual([m.netmask, m.gateway, m.DNS], ['255.255.255.0', '10.77.0.1', '10.77.0.53,10.77.0.54']);
  assert.match(ns.ip('-4', 'route', 'show', 'default'), /default via 10\.77\.0\.1 dev xenbr0/);

  // DHCP again on a PIF that has a client: still one client, same lease.
  await call('PIF.reconfigure_ip', eth1, 'DHCP', '', '', '', '');
  assert.equal(clients('xenbr1').length, 1);
  assert.equal(await call('PIF.get_IP', eth1), ip);
});

test('Static or None stops the client and takes the lease off; unplug stops it, plug starts it again', { skip: SKIP }, async (t) => {
  if (!ns) return t.skip(NONS);
  const eth1 = await pif('eth1');
  const eth0 = await pif('eth0');
  if ((await call('PIF.get_ip_configuration_mode', eth1)) !== 'DHCP') await call('PIF.reconfigure_ip', eth1, 'DHCP', '', '', '', '');
  await call('PIF.reconfigure_ip', eth1, 'Static', '192.0.2.10', '255.255.255.0', '', '');
  assert.deepEqual(clients('xenbr1'), []);
  assert.deepEqual(ns.addresses('xenbr1'), ['192.0.2.10/24']);
  assert.equal(await call('PIF.get_IP', eth1), '192.0.2.10');

  await call('PIF.reconfigure_ip', eth1, 'DHCP', '', '', '', '');
  assert.equal(clients('xenbr1').length, 1);
  assert.ok(inRange(ns.addresses('xenbr1')[0]!.split('/')[0]!, '10.77.1.100', '10.77.1.150'), 'the static address gave way to a lease');
  await call('PIF.reconfigure_ip', eth1, 'None', '', '', '', '');
  assert.deepEqual(clients('xenbr1'), []);
  assert.deepEqual(ns.addresses('xenbr1'), []);

  await call('PIF.reconfigure_ip', eth1, 'DHCP', '', '', '', '');
  assert.equal(clients('xenbr1').length, 1);
  await call('PIF.unplug', eth1);
  assert.deepEqual(clients('xenbr1'), []);
  assert.deepEqual(ns.addresses('xenbr1'), []);
  await call('PIF.plug', eth1);
  assert.equal(clients('xenbr1').length, 1);
  const ip = await call('PIF.get_IP', eth1);
  assert.ok(inRange(ip, '10.77.1.100', '10.77.1.150'), ip);
  assert.deepEqual(ns.addresses('xenbr1'), [`${ip}/24`]);

  // The management PIF back to Static: its lease and the default route it brought go.
  if ((await call('PIF.get_ip_configuration_mode', eth0)) === 'DHCP') {
    await call('PIF.reconfigure_ip', eth0, 'Static', '192.0.2.5', '255.255.255.0', '', '');
    assert.deepEqual(clients('xenbr0'), []);
    assert.deepEqual(ns.addresses('xenbr0'), ['192.0.2.5/24']);
    assert.equal(ns.ip('-4', 'route', 'show', 'default').trim(), '');
  }
});

test('the daemon\'s stop leaves no client behind and releases the lease; a restart starts the client again', { skip: SKIP }, async (t) => {
  if (!ns) return t.skip(NONS);
  const eth1 = await pif('eth1');
  if ((await call('PIF.get_ip_configuration_mode', eth1)) !== 'DHCP') await call('PIF.reconfigure_ip', eth1, 'DHCP', '', '', '', '');
  const pids = clients('xenbr1');
  assert.equal(pids.length, 1);
  assert.equal(await d!.stop(), 0);
  assert.deepEqual(clients('xenbr1'), []);
  assert.ok(!existsSync(`/proc/${pids[0]}`), 'the client process is gone');
  assert.deepEqual(ns.addresses('xenbr1'), [], 'the lease was released');

  await startXapid();
  // At start the client is started, not waited for: wait for its lease.
  await until(() => ns!.addresses('xenbr1').length === 1);
  assert.equal(clients('xenbr1').length, 1);
  const ip = ns.addresses('xenbr1')[0]!.split('/')[0]!;
  await until(async () => (await call('PIF.get_IP', eth1)) === ip);
});

test('a daemon killed with SIGKILL takes its DHCP clients with it', { skip: SKIP }, async (t) => {
  if (!ns) return t.skip(NONS);
  const pids = clients('xenbr1');
  assert.equal(pids.length, 1);
  await d!.stop('SIGKILL');
  // The parent-death signal reaches the client, which releases its lease and exits.
  await until(() => !existsSync(`/proc/${pids[0]}`));
  assert.deepEqual(clients('xenbr1'), []);
});

test('mode none: DHCP is recorded only, and no client runs', async (t) => {
  const dir = tempDir('xapid-dhcpnone-');
  const none = await startDaemon({ stateDir: dir, args: ['--network-mode', 'none', '--sim-nics', '2'] });
  t.after(async () => {
    await none.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const s = await login(none.url);
  const all = (await jsonCall(none.url, 'PIF.get_all_records', [s])).result as Record<string, any>;
  const eth1 = Object.entries(all).find(([, p]) => p.device === 'eth1')![0];
  const r = await jsonCall(none.url, 'PIF.reconfigure_ip', [s, eth1, 'DHCP', '', '', '', '']);
  assert.equal(r.error, undefined, JSON.stringify(r.error));
  const p = (await jsonCall(none.url, 'PIF.get_record', [s, eth1])).result;
  assert.deepEqual([p.ip_configuration_mode, p.IP], ['DHCP', '']);
  assert.equal(existsSync(`${dir}/dhcp`), false, 'no DHCP client was ever set up');
});
