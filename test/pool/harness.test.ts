// The pool harness itself (test/helpers/pool.ts): three real xapid processes, each in a
// network namespace of its own with its own address on a bridge, all on port 80; real
// clients reach them by address from a client namespace, the hosts reach each other,
// links can be cut and restored, a host can be stopped, paused and restarted by PID, and
// destroy leaves nothing behind. No traffic leaves the pool's namespaces: the test
// process talks to a host only over its Unix socket or through a member of the pool.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, realpathSync, existsSync } from 'node:fs';
import { MAIN, ROOT_PASSWORD } from '../helpers/daemon.js';
import { PoolNet, namespaceInode, type PoolHost } from '../helpers/pool.js';
import { until, vmRecord } from '../helpers/api.js';
import { loginAt, value } from '../rpc/wire.js';
import { namespaceNames } from '../network/netns.js';

const PYTHON = '/usr/bin/python3';
const REF = /^OpaqueRef:[0-9a-f-]{36}$/;
/** How long a connection may take before "unreachable" (inside one bridge a reachable
 * host answers in well under a millisecond). */
const CUT_MS = 700;

// Debian's XenAPI module, run in the client namespace: logs in at each URL and reads the host.
const PY_LOGIN = `
import json, sys
from os_xenapi.client import XenAPI
out = []
for url in sys.argv[2:]:
    s = XenAPI.Session(url)
    s.xenapi.login_with_password('root', sys.argv[1])
    h = s.xenapi.host.get_all()[0]
    out.append({'url': url, 'session': s.handle, 'uuid': s.xenapi.host.get_uuid(h), 'address': s.xenapi.host.get_address(h)})
    s.xenapi.logout()
json.dump(out, sys.stdout)
`;

// Xen Orchestra's xen-api client, run in the client namespace.
const XEN_API_LOGIN = `
const { Xapi } = await import('xen-api');
const xapi = new Xapi({ url: process.argv[1], auth: { user: 'root', password: process.argv[2] }, allowUnauthorized: true, watchEvents: false });
await xapi.connect();
const hosts = await xapi.call('host.get_all_records');
console.log(JSON.stringify({ session: xapi.sessionId, hosts: Object.values(hosts).map((h) => ({ uuid: h.uuid, address: h.address })) }));
await xapi.disconnect();
process.exit(0);
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A host's uuid and address, asked over its Unix socket from the test process. */
async function localHost(h: PoolHost): Promise<{ uuid: string; address: string }> {
  const s = await loginAt(h.local);
  const [ref] = (await value(h.local, 'json', 'host.get_all', [s])) as string[];
  return { uuid: await value(h.local, 'json', 'host.get_uuid', [s, ref]), address: await value(h.local, 'json', 'host.get_address', [s, ref]) };
}

const net = PoolNet.create(3);

describe('pool harness: three hosts on a network of their own', { skip: net ? false : 'needs the rights to create network namespaces and bridges' }, () => {
  const pool = net!;
  const uuids: string[] = [];
  let setupMs = 0;

  before(async () => {
    const t0 = Date.now();
    await pool.startHosts();
    setupMs = Date.now() - t0;
    for (const h of pool.hosts) uuids.push((await localHost(h)).uuid);
  });
  after(() => pool.destroy());

  test('each daemon is its own node process, in its own namespace, on its own address and the same port', async (t) => {
    t.diagnostic(`3 hosts started in ${setupMs} ms on ${pool.subnet}`);
    const addresses = pool.hosts.map((h) => h.address);
    assert.equal(new Set(addresses).size, 3);
    assert.equal(new Set(uuids).size, 3, 'three hosts, three uuids');
    for (const [i, h] of pool.hosts.entries()) {
      // The PID held is the daemon's own: ip netns exec execs node, it does not fork.
      assert.equal(readlinkSync(`/proc/${h.pid}/exe`), realpathSync(process.execPath));
      assert.ok(readFileSync(`/proc/${h.pid}/cmdline`, 'utf8').split('\0').includes(MAIN));
      assert.equal(readlinkSync(`/proc/${h.pid}/ns/net`), namespaceInode(h.ns.name), 'it runs in the host\'s namespace');
      assert.equal(Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${h.pid}/status`, 'utf8'))![1]), process.pid, 'a child of the test process');
      assert.deepEqual(h.ns.pids().filter((p) => p === h.pid), [h.pid]);
      assert.equal(h.daemon!.url, `http://${h.address}:80`, 'it says it listens on its address, port 80');
      assert.equal(h.url, `http://${h.address}`);
      assert.equal(h.address, `${pool.prefix}.${10 + i}`);
      // Inside its namespace: lo and eth0 with its address, and no route out of the /24.
      assert.deepEqual(h.ns.addresses('eth0'), [`${h.address}/24`]);
      assert.deepEqual([...h.ns.links().keys()].sort(), ['eth0', 'lo']);
      assert.deepEqual(h.ns.ip('-4', 'route', 'show').trim().split('\n').map((l) => l.split(' ')[0]), [pool.subnet]);
      const listening = (await h.exec(['ss', '-Hltn'])).stdout;
      assert.match(listening, new RegExp(`${h.address.replaceAll('.', '\\.')}:80\\s`));
      // xapid finds its management address by itself: the one on eth0.
      assert.equal((await localHost(h)).address, h.address);
    }
  });

  test('from the client namespace, Debian\'s XenAPI module logs in at every host by address', async () => {
    const r = await pool.exec([PYTHON, '-c', PY_LOGIN, ROOT_PASSWORD, ...pool.hosts.map((h) => h.url)]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Array<{ url: string; session: string; uuid: string; address: string }>;
    assert.deepEqual(out.map((o) => [o.url, o.uuid, o.address]), pool.hosts.map((h, i) => [h.url, uuids[i], h.address]));
    for (const o of out) assert.match(o.session, REF);
  });

  test('from the client namespace, the xen-api npm client and JSON-RPC reach the hosts by address', async () => {
    const [h0] = pool.hosts;
    const r = await pool.exec([process.execPath, '--input-type=module', '-e', XEN_API_LOGIN, h0!.url, ROOT_PASSWORD]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.session, REF);
    assert.deepEqual(out.hosts, [{ uuid: uuids[0], address: h0!.address }]);
    for (const [i, h] of pool.hosts.entries()) {
      const s = await pool.client.login(h);
      assert.match(s, REF);
      const [ref] = await pool.client.value(h, 'json', 'host.get_all', [s]);
      assert.equal(await pool.client.value(h, 'xml', 'host.get_uuid', [s, ref]), uuids[i]);
    }
  });

  test('the hosts reach each other by address, over JSON-RPC and XML-RPC', async () => {
    const [h0, h1, h2] = pool.hosts as [PoolHost, PoolHost, PoolHost];
    for (const [from, to, j] of [[h0, h1, 1], [h0, h2, 2], [h2, h0, 0]] as const) {
      for (const proto of ['json', 'xml'] as const) {
        const s = await from.login(to, proto);
        assert.match(s, REF);
        const [ref] = await from.value(to, proto, 'host.get_all', [s]);
        assert.equal(await from.value(to, proto, 'host.get_uuid', [s, ref]), uuids[j], `${from.address} → ${to.address} over ${proto}`);
      }
    }
  });

  test('a link taken down cuts a host off; back up, it answers again', async () => {
    const [h0, h1, h2] = pool.hosts as [PoolHost, PoolHost, PoolHost];
    // The port leaves the bridge; h1 keeps its carrier, as behind a failed switch.
    pool.linkDown(h1);
    assert.equal(h1.ns.link('eth0')!.flags.includes('NO-CARRIER'), false);
    assert.equal(await pool.client.reaches(h1, CUT_MS), false, 'client → h1');
    assert.equal(await h0.reaches(h1, CUT_MS), false, 'h0 → h1');
    assert.equal(await h1.reaches(h2, CUT_MS), false, 'h1 → h2');
    assert.equal(await pool.client.reaches(h0), true, 'the others still answer');
    assert.equal(await h0.reaches(h2), true);
    await assert.rejects(pool.client.call(h1, 'json', 'session.login_with_password', ['root', ROOT_PASSWORD], 1000), { code: 'ETIMEDOUT' });
    pool.linkUp(h1);
    for (const [from, to] of [[pool.client, h1], [h0, h1], [h1, h2]] as const) await from.waitReaches(to);
    assert.match(await h0.login(h1), REF);
    assert.match(await h1.login(h2), REF);

    // The cable pulled instead: h2 sees no carrier.
    pool.linkDown(2, { carrier: false });
    await until(async () => (h2.ns.link('eth0')!.flags.includes('NO-CARRIER') ? true : undefined), 'no carrier on h2');
    assert.equal(await pool.client.reaches(h2, CUT_MS), false);
    assert.equal(await h2.reaches(h0, CUT_MS), false);
    pool.linkUp(2);
    for (const [from, to] of [[pool.client, h2], [h2, h0]] as const) await from.waitReaches(to);
    assert.match(await pool.client.login(h2), REF);
  });

  test('a paused host (SIGSTOP) takes connections but answers nothing until it is continued', async () => {
    const h0 = pool.hosts[0]!;
    h0.pause();
    try {
      assert.equal(await pool.client.reaches(h0), true, 'the kernel still accepts the connection');
      await assert.rejects(pool.client.call(h0, 'json', 'session.login_with_password', ['root', ROOT_PASSWORD], 1000), { code: 'ETIMEDOUT' });
    } finally {
      h0.resume();
    }
    assert.match(await pool.client.login(h0), REF);
  });

  test('a host stopped and restarted by PID keeps its state', async () => {
    const h2 = pool.hosts[2]!;
    const s = await pool.client.login(h2);
    const vm = await pool.client.value(h2, 'json', 'VM.create', [s, vmRecord('kept across a restart')]);
    const vmUuid = await pool.client.value(h2, 'json', 'VM.get_uuid', [s, vm]);
    const oldPid = h2.pid;
    assert.equal(await h2.stop(), 0, 'SIGTERM: a clean exit');
    assert.equal(alive(oldPid), false);
    assert.equal(h2.running, false);
    assert.equal(await pool.client.reaches(h2), false, 'nothing listens on its address');
    assert.equal(await pool.client.reaches(pool.hosts[1]!), true, 'the others go on');

    await h2.start();
    assert.notEqual(h2.pid, oldPid);
    assert.equal(readlinkSync(`/proc/${h2.pid}/ns/net`), namespaceInode(h2.ns.name));
    assert.equal((await localHost(h2)).uuid, uuids[2], 'the same host');
    const s2 = await pool.client.login(h2);
    assert.equal(await pool.client.value(h2, 'json', 'VM.get_by_uuid', [s2, vmUuid]), vm, 'the VM made before the restart');

    await h2.restart();
    assert.equal((await localHost(h2)).uuid, uuids[2]);
  });

  test('destroy stops every process it started and deletes every namespace it made', async () => {
    const names = pool.namespaces;
    assert.equal(names.length, 5);
    assert.ok(names.every((n) => namespaceNames().includes(n)));
    const pids = [pool.switchNs, pool.client.ns, ...pool.hosts.map((h) => h.ns)].flatMap((ns) => ns.pids());
    const daemons = pool.hosts.map((h) => h.pid);
    assert.ok(daemons.every((p) => pids.includes(p)));
    assert.ok(pids.length > daemons.length, 'the agents run there too');
    const client = pool.spawnClient(['sleep', '600']);
    pids.push(client.pid!);
    await pool.destroy();
    assert.deepEqual(namespaceNames().filter((n) => names.includes(n) || n.startsWith(pool.base)), []);
    assert.deepEqual(pids.filter(alive), []);
    assert.equal(existsSync(pool.dir), false, 'the state directories are gone');
    for (const h of pool.hosts) assert.equal(h.running, false);
  });
});
