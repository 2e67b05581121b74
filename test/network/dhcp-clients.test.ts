// The DHCP client manager on its own (src/network/dhcp.ts), against a real dnsmasq
// across a veth pair between two namespaces this test makes: how host mode's clients
// outlive a stop and are adopted, replaced or stopped by the next start (never two on a
// bridge), a bridge where no server answers, and a missing client program.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { DhcpClients } from '../../src/network/dhcp.js';
import { IpError } from '../../src/network/ip.js';
import { tempDir } from '../helpers/daemon.js';
import { TestNamespace } from './netns.js';
import { TestDhcpServer, hasDnsmasq, ipNumber } from './dhcpd.js';

let nsC: TestNamespace | undefined;
let nsS: TestNamespace | undefined;
let server: TestDhcpServer | undefined;
let dir: string;
const logs: string[] = [];
const log = pino({ level: 'info' }, { write: (s: string) => void logs.push(s) });
const open: DhcpClients[] = [];

const SKIP = !hasDnsmasq ? 'needs dnsmasq (Debian package dnsmasq-base)' : undefined;

const clients = (bridge: string): number[] => nsC!.dhcpClients(bridge);

async function manager(opts: { persistent: boolean; busybox?: string }): Promise<DhcpClients> {
  const m = await DhcpClients.open({ dir, netns: nsC!.name, log, onChange: () => undefined, ...opts });
  open.push(m);
  return m;
}

before(async () => {
  if (SKIP) return;
  nsC = TestNamespace.create();
  nsS = TestNamespace.create();
  if (!nsC || !nsS) return;
  dir = tempDir('xapid-dhcp-');
  nsC.addNic('c0');
  nsC.moveLink('c0-p', nsS);
  nsS.ip('addr', 'add', '10.78.0.1/24', 'dev', 'c0-p');
  nsS.ip('link', 'set', 'dev', 'c0-p', 'up');
  for (const br of ['br0', 'br1']) {
    nsC.ip('link', 'add', 'name', br, 'type', 'bridge');
    nsC.ip('link', 'set', 'dev', br, 'up');
  }
  nsC.ip('link', 'set', 'dev', 'c0', 'master', 'br0', 'up');
  server = await TestDhcpServer.start(nsS, [{ dev: 'c0-p', range: ['10.78.0.100', '10.78.0.150'], router: '10.78.0.1', dns: ['10.78.0.53'] }], dir);
});

after(async () => {
  for (const m of open) await m.stopAll();
  for (const m of open) m.close();
  await server?.stop();
  nsC?.delete();
  nsS?.delete();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('host mode: a client outlives a stop, the next start adopts it, replaces it if its settings differ, or stops it', { skip: SKIP }, async (t) => {
  if (!nsC || !nsS) return t.skip('needs the rights to create network namespaces');
  const first = await manager({ persistent: true });
  await first.start('br0', { defaultRoute: false });
  assert.equal(await first.waitForLease('br0', 60_000), 'bound');
  const lease = first.lease('br0')!;
  assert.ok(ipNumber(lease.ip) >= ipNumber('10.78.0.100') && ipNumber(lease.ip) <= ipNumber('10.78.0.150'), lease.ip);
  assert.deepEqual(nsC.addresses('br0'), [`${lease.ip}/24`]);
  const [pid] = clients('br0');
  assert.ok(pid);
  first.close();

  // "Restart": the client still runs and keeps the address; the new manager takes it over.
  assert.deepEqual(clients('br0'), [pid]);
  const second = await manager({ persistent: true });
  await second.start('br0', { defaultRoute: false });
  assert.deepEqual(clients('br0'), [pid], 'adopted: no second client');
  assert.ok(logs.some((l) => l.includes('DHCP client of an earlier run adopted')));
  assert.equal(second.lease('br0')?.ip, lease.ip, 'the lease is read back');
  assert.deepEqual(nsC.addresses('br0'), [`${lease.ip}/24`]);

  // Other settings (now the default route is wanted): the client is replaced.
  await second.start('br0', { defaultRoute: true });
  const now = clients('br0');
  assert.equal(now.length, 1);
  assert.notEqual(now[0], pid);
  assert.equal(await second.waitForLease('br0', 60_000), 'bound');
  assert.match(nsC.ip('-4', 'route', 'show', 'default'), /default via 10\.78\.0\.1 dev br0/);
  second.close();

  // A start after which nothing wants DHCP on br0: the client goes, with its lease and route.
  const third = await manager({ persistent: true });
  await third.dropOrphans();
  assert.deepEqual(clients('br0'), []);
  assert.deepEqual(nsC.addresses('br0'), []);
  assert.equal(nsC.ip('-4', 'route', 'show', 'default').trim(), '');
  third.close();
});

test('without persistence, clients of an earlier run are stopped at once', { skip: SKIP }, async (t) => {
  if (!nsC || !nsS) return t.skip('needs the rights to create network namespaces');
  const left = await manager({ persistent: true });
  await left.start('br0', { defaultRoute: false });
  assert.equal(clients('br0').length, 1);
  left.close();
  const m = await manager({ persistent: false });
  assert.deepEqual(clients('br0'), []);
  // Its own clients run until stopped, releasing the lease.
  await m.start('br0', { defaultRoute: false });
  assert.equal(await m.waitForLease('br0', 60_000), 'bound');
  assert.equal(await m.stop('br0'), true);
  assert.deepEqual(clients('br0'), []);
  assert.deepEqual(nsC.addresses('br0'), []);
  m.close();
});

test('no server: the wait ends when a round of discovery goes unanswered; the client keeps asking', { skip: SKIP }, async (t) => {
  if (!nsC || !nsS) return t.skip('needs the rights to create network namespaces');
  const m = await manager({ persistent: false });
  await m.start('br1', { defaultRoute: false });
  assert.equal(await m.waitForLease('br1', 120_000), 'failed');
  assert.equal(m.lease('br1')?.state, 'failed');
  assert.equal(clients('br1').length, 1, 'still running');
  assert.ok(logs.some((l) => l.includes('no DHCP server answered yet')));
  await m.stop('br1');
  assert.deepEqual(clients('br1'), []);
  m.close();
});

test('a missing client program is a precise error, and nothing runs', { skip: SKIP }, async (t) => {
  if (!nsC || !nsS) return t.skip('needs the rights to create network namespaces');
  const m = await manager({ persistent: false, busybox: '/nonexistent/busybox' });
  await assert.rejects(m.start('br0', { defaultRoute: false }), (e: unknown) => {
    assert.ok(e instanceof IpError);
    assert.equal(e.kind, 'no-tool');
    assert.match(e.detail, /busybox is not installed/);
    return true;
  });
  assert.equal(m.has('br0'), false);
  assert.deepEqual(clients('br0'), []);
  m.close();
});
