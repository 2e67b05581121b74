// ObjectStore on a real SQLite file: objects, bound fields computed on read, the
// change log, uniqueness, transactions, and records read one by one or all at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classes, NULL_REF } from '../../src/datamodel/model.js';
import { ObjectStore, type ApiRecord } from '../../src/db/store.js';
import { XenApiError } from '../../src/core/errors.js';
import { sampleValue } from '../helpers/daemon.js';
import { openTestStore } from '../helpers/store.js';

interface Change { id: number; ts: number; cls: string; op: string; ref: string; uuid: string; snapshot: string | null }

const openStore = (t: { after(fn: () => void): void }) => openTestStore(t, 'xapid-store-');

function changesAfter(store: ObjectStore, id: number): Change[] {
  return store.db.prepare('SELECT * FROM "_changes" WHERE id > ? ORDER BY id').all(id) as Change[];
}

const brief = (cs: Change[]) => cs.map((c) => `${c.op} ${c.cls} ${c.ref}`);

function xenError(code: string, params?: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof XenApiError, `expected a XenAPI error, got ${String(e)}`);
    assert.equal(e.code, code);
    if (params) assert.deepEqual(e.params, params);
    return true;
  };
}

test('create, get, update and destroy one object', (t) => {
  const { store } = openStore(t);
  const vm = store.create('VM', { name_label: 'alpha', memory_static_max: 2 ** 34, is_a_template: true, other_config: { a: 'b' } });
  assert.match(vm, /^OpaqueRef:[0-9a-f-]{36}$/);
  const rec = store.get('VM', vm)!;
  assert.equal(rec.name_label, 'alpha');
  assert.equal(rec.memory_static_max, 2 ** 34);
  assert.equal(rec.is_a_template, true);
  assert.deepEqual(rec.other_config, { a: 'b' });
  assert.match(rec.uuid, /^[0-9a-f-]{36}$/);
  // Everything not given has its initial value; the record lists exactly the record fields, in order.
  const vmClass = classes.get('VM')!;
  assert.deepEqual(Object.keys(rec), vmClass.recordFields.map((f) => f.name));
  assert.equal(rec.power_state, 'Halted');
  assert.equal(rec.resident_on, NULL_REF);
  assert.deepEqual(rec.VBDs, []);
  assert.ok(store.exists('VM', vm));
  assert.deepEqual(store.refsByNameLabel('VM', 'alpha'), [vm]);
  assert.equal(store.refByUuid('VM', rec.uuid), vm);

  store.update('VM', vm, { name_label: 'beta', is_a_template: false, other_config: {} });
  const after = store.get('VM', vm)!;
  assert.equal(after.name_label, 'beta');
  assert.equal(after.is_a_template, false);
  assert.deepEqual(after.other_config, {});
  assert.equal(after.uuid, rec.uuid);
  assert.deepEqual(store.refsByNameLabel('VM', 'alpha'), []);

  store.destroy('VM', vm);
  assert.equal(store.get('VM', vm), undefined);
  assert.equal(store.exists('VM', vm), false);
  assert.equal(store.refByUuid('VM', rec.uuid), undefined);
  assert.deepEqual(store.all('VM'), []);
  assert.throws(() => store.update('VM', vm, { name_label: 'x' }), xenError('HANDLE_INVALID', ['VM', vm]));
  assert.throws(() => store.destroy('VM', vm), xenError('HANDLE_INVALID', ['VM', vm]));
});

test('every stored field of every class keeps its value through SQLite and a reopen', (t) => {
  const { store, file } = openStore(t);
  const made = new Map<string, { ref: string; values: ApiRecord }>();
  for (const c of classes.values()) {
    if (!c.stored) continue;
    const values: ApiRecord = {};
    c.storedFields.forEach((f, i) => {
      values[f.name] = f.name === 'uuid' ? `00000000-0000-4000-8000-${String(made.size).padStart(12, '0')}` : sampleValue(f.type, i, (cls) => `OpaqueRef:${cls}-target`);
    });
    made.set(c.name, { ref: store.any.create(c.name, values), values });
  }
  const check = (s: ObjectStore) => {
    for (const [cls, { ref, values }] of made) {
      const rec = s.any.get(cls, ref)!;
      for (const f of classes.get(cls)!.storedFields) assert.deepEqual(rec[f.name], values[f.name], `${cls}.${f.name}`);
    }
  };
  check(store);
  store.close();
  const again = new ObjectStore(file);
  try {
    check(again);
  } finally {
    again.close();
  }
});

test('a bound field shows on the other side, and the change log names every object touched', (t) => {
  const { store } = openStore(t);
  const x = store.create('VM', { name_label: 'x' });
  const y = store.create('VM', { name_label: 'y' });
  const net = store.create('network', { name_label: 'n', bridge: 'xenbr0' });
  const mark = store.lastChangeId();

  const vif = store.create('VIF', { VM: x, network: net, device: '0', MAC: 'aa:bb:cc:dd:ee:ff', MTU: 1500 });
  assert.deepEqual(store.get('VM', x)!.VIFs, [vif]);
  assert.deepEqual(store.get('network', net)!.VIFs, [vif]);
  assert.deepEqual(store.get('VM', y)!.VIFs, []);
  assert.deepEqual(store.allRecords('VM').get(x)!.VIFs, [vif]);
  assert.deepEqual(store.referrers('VM', x).map((r) => [r.field.name, r.refs]), [['VIFs', [vif]]]);

  let log = changesAfter(store, mark);
  assert.equal(log[0]!.op, 'add');
  assert.equal(log[0]!.cls, 'VIF');
  assert.deepEqual(brief(log).sort(), [`add VIF ${vif}`, `mod VM ${x}`, `mod network ${net}`].sort());
  assert.equal(log.find((c) => c.ref === x)!.uuid, store.get('VM', x)!.uuid);
  assert.equal(log.find((c) => c.ref === net)!.uuid, store.get('network', net)!.uuid);

  // Moving the VIF to another VM touches both VMs; the network did not change.
  const mark2 = store.lastChangeId();
  store.update('VIF', vif, { VM: y });
  assert.deepEqual(store.get('VM', x)!.VIFs, []);
  assert.deepEqual(store.get('VM', y)!.VIFs, [vif]);
  log = changesAfter(store, mark2);
  assert.deepEqual(brief(log).sort(), [`mod VIF ${vif}`, `mod VM ${x}`, `mod VM ${y}`].sort());

  // A change that leaves the bound field alone touches only the object itself.
  const mark3 = store.lastChangeId();
  store.update('VIF', vif, { other_config: { k: 'v' } });
  assert.deepEqual(brief(changesAfter(store, mark3)), [`mod VIF ${vif}`]);

  // Destroying it removes it from both sides; the log keeps what it was.
  const before = store.get('VIF', vif)!;
  const mark4 = store.lastChangeId();
  store.destroy('VIF', vif);
  assert.deepEqual(store.get('VM', y)!.VIFs, []);
  assert.deepEqual(store.get('network', net)!.VIFs, []);
  assert.deepEqual(store.referrers('network', net), []);
  log = changesAfter(store, mark4);
  assert.deepEqual(brief(log).sort(), [`del VIF ${vif}`, `mod VM ${y}`, `mod network ${net}`].sort());
  assert.equal(log[0]!.op, 'del');
  assert.equal(log[0]!.uuid, before.uuid);
  assert.deepEqual(JSON.parse(log[0]!.snapshot!), before);
});

test('a bound field pointing at nothing (NULL or a missing object) touches nothing else', (t) => {
  const { store } = openStore(t);
  const mark = store.lastChangeId();
  const vbd = store.create('VBD', { VM: NULL_REF, VDI: 'OpaqueRef:not-there', userdevice: '0' });
  assert.deepEqual(brief(changesAfter(store, mark)), [`add VBD ${vbd}`]);
});

test('change-log entries: ids strictly increase; op, class, ref and uuid are right; only del keeps a snapshot', (t) => {
  const { store } = openStore(t);
  const start = store.lastChangeId();
  const net = store.create('network', { name_label: 'a' });
  store.update('network', net, { name_label: 'b' });
  store.update('network', net, { name_description: 'c' });
  const last = store.get('network', net)!;
  store.destroy('network', net);
  const log = changesAfter(store, start);
  assert.deepEqual(log.map((c) => c.op), ['add', 'mod', 'mod', 'del']);
  for (let i = 1; i < log.length; i++) assert.ok(log[i]!.id > log[i - 1]!.id, 'ids strictly increase');
  for (const c of log) {
    assert.equal(c.cls, 'network');
    assert.equal(c.ref, net);
    assert.equal(c.uuid, last.uuid);
    assert.ok(c.ts > 1e9 && c.ts < 1e10, 'ts is Unix seconds');
  }
  assert.deepEqual(log.slice(0, 3).map((c) => c.snapshot), [null, null, null]);
  assert.deepEqual(JSON.parse(log[3]!.snapshot!), last);
  assert.equal(store.lastChangeId(), log[3]!.id);

  // Ids are never reused, even after the newest entry is gone.
  store.db.prepare('DELETE FROM "_changes" WHERE id = ?').run(log[3]!.id);
  store.create('network', {});
  assert.ok(store.lastChangeId() > log[3]!.id);
});

test('session and user changes are not logged', (t) => {
  const { store } = openStore(t);
  const mark = store.lastChangeId();
  const s = store.create('session', {});
  store.update('session', s, { pool: true });
  store.destroy('session', s);
  const u = store.create('user', { short_name: 'u', fullname: 'U' });
  store.destroy('user', u);
  assert.deepEqual(changesAfter(store, mark), []);
});

test('a second object with the same uuid is refused and nothing is written', (t) => {
  const { store } = openStore(t);
  const uuid = '11111111-2222-4333-8444-555555555555';
  const a = store.create('VM', { uuid, name_label: 'first' });
  const mark = store.lastChangeId();
  assert.throws(() => store.create('VM', { uuid, name_label: 'second' }), xenError('DB_UNIQUENESS_CONSTRAINT_VIOLATION', ['VM', 'uuid', uuid]));
  assert.deepEqual(store.all('VM'), [a]);
  assert.deepEqual(store.refsByNameLabel('VM', 'second'), []);
  assert.equal(store.lastChangeId(), mark);
  // The same uuid in another class is fine: uniqueness is per class.
  store.create('network', { uuid });
  // Generated uuids are fresh each time.
  const uuids = new Set(Array.from({ length: 50 }, () => store.get('VM', store.create('VM', {}))!.uuid));
  assert.equal(uuids.size, 50);
});

test('a failed transaction leaves no object and no change-log entry, and tells no listener', (t) => {
  const { store } = openStore(t);
  let commits = 0;
  store.onCommit(() => commits++);
  const mark = store.lastChangeId();
  assert.throws(() => store.tx(() => {
    store.create('VM', { name_label: 'doomed' });
    store.create('network', { name_label: 'doomed' });
    throw new Error('boom');
  }), /boom/);
  assert.deepEqual(store.refsByNameLabel('VM', 'doomed'), []);
  assert.deepEqual(store.refsByNameLabel('network', 'doomed'), []);
  assert.equal(store.lastChangeId(), mark);
  assert.equal(commits, 0);
  store.tx(() => {
    store.create('VM', { name_label: 'kept' });
    store.create('VM', { name_label: 'kept' });
  });
  assert.equal(commits, 1, 'one commit, one notification');
  assert.equal(store.refsByNameLabel('VM', 'kept').length, 2);
});

test('only stored fields can be updated', (t) => {
  const { store } = openStore(t);
  const vm = store.create('VM', {});
  assert.throws(() => store.any.update('VM', vm, { VBDs: [] }), /not a stored field/);
  assert.throws(() => store.any.update('VM', vm, { no_such_field: 1 }), /not a stored field/);
  assert.deepEqual(store.get('VM', vm)!.VBDs, []);
});

test('all records at once equal the records read one by one, for every class', (t) => {
  const { store } = openStore(t);
  // A small connected world: hosts, VMs with disks and NICs, networks, storage.
  const host = store.create('host', { name_label: 'h' });
  const sr = store.create('SR', { name_label: 'sr' });
  store.create('PBD', { host, SR: sr });
  const net = store.create('network', {});
  store.create('PIF', { host, network: net, device: 'eth0' });
  for (let i = 0; i < 4; i++) {
    const vm = store.create('VM', { name_label: `vm${i}`, resident_on: i % 2 ? host : NULL_REF });
    for (let j = 0; j < i; j++) {
      const vdi = store.create('VDI', { SR: sr, virtual_size: 1024 * j });
      store.create('VBD', { VM: vm, VDI: vdi, userdevice: String(j) });
      store.create('VIF', { VM: vm, network: net, device: String(j) });
    }
    store.create('console', { VM: vm });
  }
  store.create('host_cpu', { host, number: 0 });
  let compared = 0;
  for (const c of classes.values()) {
    if (!c.stored) continue;
    const all = store.allRecords(c.name);
    assert.deepEqual([...all.keys()], store.all(c.name), `${c.name}: same refs, same order`);
    for (const [ref, rec] of all) {
      assert.deepEqual(rec, store.any.get(c.name, ref), `${c.name} ${ref}`);
      assert.deepEqual(Object.keys(rec), c.recordFields.map((f) => f.name), `${c.name} field order`);
      compared++;
    }
  }
  assert.ok(compared > 30);
  const vm3 = store.refsByNameLabel('VM', 'vm3')[0]!;
  assert.equal((store.get('VM', vm3)!.VBDs as string[]).length, 3);
  assert.deepEqual(store.get('host', host)!.resident_VMs, store.all('VM').filter((_, i) => i % 2));
  assert.deepEqual(store.get('SR', sr)!.VDIs, store.all('VDI'));
});
