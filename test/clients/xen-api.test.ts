// Xen Orchestra's connector, the npm package `xen-api`, against a real daemon.
//
// What it does on connect (node_modules/xen-api/index.mjs, _sessionOpen):
//   session.login_with_password(user, password)   — two arguments only
//   pool.get_all_records                          — the pool record becomes xapi.pool
//   system.listMethods                            — every `X.get_all_records` names a type
// Its JSON-RPC transport requires the answer's content type to be exactly
// "application/json" (else it silently falls back to XML-RPC on /xmlrpc).
// Unless `watchEvents: false`, it then watches events: event.inject(pool) — if that is
// MESSAGE_METHOD_UNKNOWN it takes the legacy path: X.get_all_records for every type,
// event.register(types), then event.next in a loop. The object cache (xapi.objects) is
// filled by that first fetch and kept current by the event calls; callAsync and
// watchTask rely on it (a task's end is seen as an event).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, ROOT_PASSWORD, type TestDaemon } from '../helpers/daemon.js';
import { controlDomain, loginAt, value } from '../rpc/wire.js';

const BAD_REF = 'OpaqueRef:00000000-0000-0000-0000-00000000dead';
const XEN_API = 'xen-api';

interface Traced {
  xapi: any;
  calls: Array<{ method: string; ok: boolean; code?: string }>;
  /** Rejects with the first failure of an event.* call (the cache then stops following changes). */
  eventFailure: Promise<never>;
  close(): Promise<void>;
}

async function connect(url: string, opts: Record<string, unknown>): Promise<Traced> {
  const { Xapi } = (await import(XEN_API)) as any;
  const xapi = new Xapi({
    url, auth: { user: 'root', password: ROOT_PASSWORD }, allowUnauthorized: true, eventPollDelay: 50, debounce: 10, ...opts,
  });
  const calls: Traced['calls'] = [];
  let failEvents!: (e: unknown) => void;
  const eventFailure = new Promise<never>((_, reject) => (failEvents = reject));
  eventFailure.catch(() => undefined);
  // Trace every call on the wire (the transport is a plain (method, args) => Promise).
  const transport = xapi._transport;
  xapi._transport = async (method: string, args: unknown[]) => {
    try {
      const r = await transport(method, args);
      calls.push({ method, ok: true });
      return r;
    } catch (e: any) {
      calls.push({ method, ok: false, code: e?.code });
      if (method.startsWith('event.') && !(method === 'event.inject' && e?.code === 'MESSAGE_METHOD_UNKNOWN')) {
        failEvents(new Error(`${method} failed: ${e?.code ?? e?.message} ${JSON.stringify(e?.params ?? [])}`));
      }
      throw e;
    }
  };
  await xapi.connect();
  return {
    xapi, calls, eventFailure,
    async close() {
      await xapi.disconnect();
      await xapi._undiciDispatcher.close();
    },
  };
}

// xen-api reports event-loop retries with console.warn; keep them out of the TAP stream.
const warnings: string[] = [];
console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' ').split('\n')[0]!);

describe('xen-api (Xen Orchestra connector)', () => {
  let d: TestDaemon;
  let pool: string;
  let host: string;
  let vm: string;
  before(async () => {
    d = await startDaemon({ https: true });
    const s = await loginAt(d.url);
    pool = (await value(d.url, 'json', 'pool.get_all', [s]))[0];
    host = await value(d.url, 'json', 'pool.get_master', [s, pool]);
    vm = await controlDomain(d.url, s);
    await value(d.url, 'json', 'session.logout', [s]);
  });
  after(() => d?.cleanup());

  for (const transport of ['json-rpc', 'xml-rpc'] as const) {
    test(`${transport} transport: connect, read records, calls and errors`, async (t) => {
      const c = await connect(d.url, { transport, watchEvents: false });
      t.after(() => c.close());
      const { xapi } = c;
      assert.equal(xapi.status, 'connected');
      assert.deepEqual(c.calls.map((x) => x.method), ['session.login_with_password', 'pool.get_all_records', 'system.listMethods']);
      assert.ok(c.calls.every((x) => x.ok));
      assert.match(xapi.sessionId, /^OpaqueRef:/);

      // the pool record it keeps, with wrapped ref fields
      assert.equal(xapi.pool.$ref, pool);
      assert.equal(xapi.pool.master, host);
      assert.equal(typeof xapi.pool.other_config, 'object');

      const vms = await xapi.getAllRecords('VM');
      const dom0 = vms.find((r: any) => r.$ref === vm);
      assert.ok(dom0, 'the control domain is among the records');
      assert.equal(dom0.power_state, 'Running');
      assert.equal(dom0.is_control_domain, true);
      assert.equal(typeof dom0.is_a_template, 'boolean');
      // xapi's JSON-RPC sends ints as numbers; its XML-RPC as strings (xen-api passes both through)
      assert.equal(typeof dom0.memory_static_max, transport === 'json-rpc' ? 'number' : 'string');
      assert.ok(Number(dom0.memory_static_max) > 0);

      const h = await xapi.getRecord('host', host);
      assert.equal(h.$ref, host);
      assert.equal(String(h.API_version_major), '1');
      assert.equal(String(h.API_version_minor), '1');
      assert.equal((await xapi.getRecordByUuid('VM', dom0.uuid)).$ref, vm);
      assert.equal(await xapi.getField('VM', vm, 'power_state'), 'Running');
      assert.deepEqual(await xapi.call('pool.get_all'), [pool]);
      assert.deepEqual(await xapi.call('host.get_by_name_label', h.name_label), [host]);

      // a write through the record helpers, read back
      await xapi.setFieldEntry('pool', pool, 'other_config', `xo-test-${transport}`, 'yes');
      assert.equal((await xapi.getField('pool', pool, 'other_config'))[`xo-test-${transport}`], 'yes');
      await xapi.setFieldEntry('pool', pool, 'other_config', `xo-test-${transport}`, null);
      assert.equal((await xapi.getField('pool', pool, 'other_config'))[`xo-test-${transport}`], undefined);

      // XenAPI failures become XapiError with code and params
      await assert.rejects(xapi.call('VM.get_record', BAD_REF), (e: any) => {
        assert.equal(e.code, 'HANDLE_INVALID');
        assert.deepEqual(e.params, ['VM', BAD_REF]);
        return true;
      });
      await assert.rejects(xapi.call('VM.no_such_call', vm), (e: any) => e.code === 'MESSAGE_METHOD_UNKNOWN');
    });
  }

  test('auto transport over HTTPS with a self-signed certificate', async (t) => {
    assert.ok(d.httpsUrl);
    const c = await connect(d.httpsUrl!, { watchEvents: false });
    t.after(() => c.close());
    assert.equal(c.xapi.pool.$ref, pool);
    assert.ok((await c.xapi.call('VM.get_all')).includes(vm));
  });

  test('a wrong password is refused with SESSION_AUTHENTICATION_FAILED', async () => {
    const { Xapi } = (await import(XEN_API)) as any;
    const xapi = new Xapi({ url: d.url, auth: { user: 'root', password: 'wrong' }, watchEvents: false });
    try {
      await assert.rejects(xapi.connect(), (e: any) => {
        assert.equal(e.code, 'SESSION_AUTHENTICATION_FAILED');
        assert.deepEqual(e.params, ['root', 'Authentication failure']);
        return true;
      });
      assert.equal(xapi.status, 'disconnected');
    } finally {
      await xapi._undiciDispatcher.close();
    }
  });

  test('with event watching on, the initial fetch fills the object cache', async (t) => {
    const c = await connect(d.url, {});
    t.after(() => c.close());
    // If event.inject exists but fails, xen-api retries it forever and never fetches:
    // fail with that error rather than wait.
    await Promise.race([c.xapi.objectsFetched, c.eventFailure]);
    const objects = c.xapi.objects.all;
    const byType = (type: string) => Object.values(objects).filter((o: any) => o.$type === type) as any[];
    assert.equal(byType('pool').length, 1);
    assert.equal(byType('host').length, 1);
    assert.ok(byType('VM').some((o) => o.$ref === vm));
    const cachedVm = c.xapi.getObjectByRef(vm);
    assert.equal(cachedVm.$resident_on.$ref, host, 'ref fields resolve through the cache');
    assert.equal(c.xapi.getObjectByRef(host).$metrics.$type, 'host_metrics');
    assert.equal(c.xapi.pool.$master.$ref, host);
    // every X.get_all_records it found in system.listMethods answered
    const fetches = c.calls.filter((x) => x.method.endsWith('.get_all_records'));
    assert.ok(fetches.length > 10);
    assert.deepEqual(fetches.filter((x) => !x.ok), []);
    // and xen-api had nothing to complain about (it warns on failed fetches and event calls)
    assert.deepEqual(warnings, []);
  });

  test('the object cache follows changes made by another client (barrier)', { timeout: 30_000 }, async (t) => {
    const c = await connect(d.url, {});
    t.after(() => c.close());
    await Promise.race([c.xapi.objectsFetched, c.eventFailure]);
    // another client renames the pool
    const other = await loginAt(d.url);
    const label = `renamed-by-another-client-${process.pid}`;
    await value(d.url, 'xml', 'pool.set_name_label', [other, pool, label]);
    // barrier() writes a pool.other_config key and waits until an event brings it back;
    // events come in order, so the rename is in the cache by then.
    await Promise.race([c.xapi.barrier(), c.eventFailure]);
    assert.equal(c.xapi.pool.name_label, label);
    assert.equal(c.xapi.getObjectByRef(pool).name_label, label);
    await value(d.url, 'json', 'pool.set_name_label', [other, pool, '']);
    await value(d.url, 'json', 'session.logout', [other]);
  });

  test('callAsync: Async.* call, task watched through events, result or error from the task', { timeout: 30_000 }, async (t) => {
    const c = await connect(d.url, {});
    t.after(() => c.close());
    await Promise.race([c.xapi.objectsFetched, c.eventFailure]);
    // a failure inside the task comes back as the XapiError of its error_info
    await assert.rejects(Promise.race([c.xapi.callAsync('VM.destroy', BAD_REF), c.eventFailure]), (e: any) => {
      assert.equal(e.code, 'HANDLE_INVALID');
      assert.deepEqual(e.params, ['VM', BAD_REF]);
      assert.equal(e.task?.status, 'failure');
      return true;
    });
    const asyncCalls = c.calls.filter((x) => x.method.startsWith('Async.'));
    assert.deepEqual(asyncCalls, [{ method: 'Async.VM.destroy', ok: true }], 'the Async call itself answers a task ref');
    // a success: the task's result (an XML-RPC <value>) is decoded by xen-api into the ref
    const net = await Promise.race([c.xapi.callAsync('network.create', { name_label: 'xo-async', name_description: '', other_config: {} }), c.eventFailure]);
    assert.match(net, /^OpaqueRef:[0-9a-f-]{36}$/);
    assert.equal(await c.xapi.getField('network', net, 'name_label'), 'xo-async');
    assert.equal(await Promise.race([c.xapi.callAsync('network.destroy', net), c.eventFailure]), '');
    await assert.rejects(c.xapi.getField('network', net, 'name_label'), (e: any) => e.code === 'HANDLE_INVALID');
  });
});
