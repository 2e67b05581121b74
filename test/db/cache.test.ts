// The object store's memory of records (src/db/cache.ts): what it hands out cannot be
// changed behind its back, every write (and every rollback) is seen by the next read,
// other connections' commits too, and the encoders' kept bytes follow the records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classes } from '../../src/datamodel/model.js';
import { ObjectStore, type ApiRecord } from '../../src/db/store.js';
import { typedSuccessBody } from '../../src/rpc/xmlrpc.js';
import { encodeJson } from '../../src/rpc/jsonrpc.js';
import { openTestStore } from '../helpers/store.js';

const openStore = (t: { after(fn: () => void): void }) => openTestStore(t, 'xapid-cache-');

/** Every record of every class as a store that has just opened the file reads them. */
function fresh(file: string): Record<string, Array<[string, ApiRecord]>> {
  const other = new ObjectStore(file);
  try {
    const out: Record<string, Array<[string, ApiRecord]>> = {};
    for (const c of classes.values()) if (c.stored) out[c.name] = [...other.allRecords(c.name)];
    return out;
  } finally {
    other.close();
  }
}

function everything(store: ObjectStore): Record<string, Array<[string, ApiRecord]>> {
  const out: Record<string, Array<[string, ApiRecord]>> = {};
  for (const c of classes.values()) if (c.stored) out[c.name] = [...store.allRecords(c.name)];
  return out;
}

test('get, field and allRecords hand out copies; view hands out the shared record, frozen', (t) => {
  const { store } = openStore(t);
  const vm = store.create('VM', { name_label: 'a', other_config: { k: 'v' }, allowed_operations: ['start'] });
  const mine = store.get('VM', vm)!;
  mine.name_label = 'changed';
  mine.other_config.k = 'changed';
  mine.allowed_operations.push('clone');
  (store.field('VM', vm, 'other_config') as Record<string, string>).k = 'changed';
  (store.allRecords('VM').get(vm)!.other_config as Record<string, string>).k = 'changed';
  const again = store.get('VM', vm)!;
  assert.equal(again.name_label, 'a');
  assert.deepEqual(again.other_config, { k: 'v' });
  assert.deepEqual(again.allowed_operations, ['start']);
  assert.deepEqual(Object.keys(again), classes.get('VM')!.recordFields.map((f) => f.name), 'a copy keeps the field order');

  const shared = store.view('VM', vm)!;
  assert.ok(Object.isFrozen(shared) && Object.isFrozen(shared.other_config) && Object.isFrozen(shared.allowed_operations));
  assert.throws(() => { (shared as ApiRecord).name_label = 'x'; }, TypeError);
  assert.throws(() => { (shared.other_config as Record<string, string>).k = 'x'; }, TypeError);
  assert.equal(store.view('VM', vm), shared, 'the same record until something writes it');
  assert.equal(store.viewAll('VM').get(vm), shared);
  assert.deepEqual(shared, again);

  // A map of sets: the copy is deep.
  const m = store.create('VM_metrics', { VCPUs_flags: { 0: ['a'] } });
  const flags = store.get('VM_metrics', m)!.VCPUs_flags as unknown as Record<string, string[]>;
  flags['0']!.push('b');
  assert.deepEqual(store.get('VM_metrics', m)!.VCPUs_flags, { 0: ['a'] });
  assert.ok(Object.isFrozen((store.view('VM_metrics', m)!.VCPUs_flags as Record<string, string[]>)['0']));
});

test('every write is seen by the next read: update, create, destroy and the bound fields they move', (t) => {
  const { store, file } = openStore(t);
  const x = store.create('VM', { name_label: 'x' });
  const y = store.create('VM', { name_label: 'y' });
  const net = store.create('network', {});
  assert.deepEqual(store.all('VM'), [x, y]);
  const before = store.view('VM', x)!;
  const untouched = store.view('VM', y)!;

  store.update('VM', x, { name_label: 'x2', other_config: { a: 'b' } });
  assert.equal(before.name_label, 'x', 'a shared record never changes');
  assert.notEqual(store.view('VM', x), before);
  assert.equal(store.get('VM', x)!.name_label, 'x2');
  assert.deepEqual(store.field('VM', x, 'other_config'), { a: 'b' });
  assert.equal(store.view('VM', y), untouched, 'a record nothing wrote is still the same one');

  // A VIF changes the VMs and the network it points at.
  const vif = store.create('VIF', { VM: x, network: net, device: '0' });
  assert.deepEqual(store.get('VM', x)!.VIFs, [vif]);
  assert.deepEqual(store.view('network', net)!.VIFs, [vif]);
  store.update('VIF', vif, { VM: y });
  assert.deepEqual(store.get('VM', x)!.VIFs, []);
  assert.deepEqual(store.allRecords('VM').get(y)!.VIFs, [vif]);
  store.destroy('VIF', vif);
  assert.deepEqual(store.viewAll('VM').get(y)!.VIFs, []);
  assert.deepEqual(store.get('network', net)!.VIFs, []);

  // New objects come last, as SQLite orders them; destroyed ones are gone everywhere.
  const z = store.create('VM', { name_label: 'z' });
  assert.deepEqual(store.all('VM'), [x, y, z]);
  assert.deepEqual([...store.viewAll('VM').keys()], [x, y, z]);
  store.destroy('VM', x);
  assert.equal(store.exists('VM', x), false);
  assert.equal(store.get('VM', x), undefined);
  assert.equal(store.view('VM', x), undefined);
  assert.deepEqual(store.all('VM'), [y, z]);
  assert.deepEqual(everything(store), fresh(file));
});

test('a rolled-back transaction leaves nothing behind in memory', (t) => {
  const { store, file } = openStore(t);
  const x = store.create('VM', { name_label: 'x' });
  const doomedLater = store.create('VM', { name_label: 'kept' });
  const z = store.create('VM', { name_label: 'z' });
  const net = store.create('network', {});
  const before = everything(store);
  const order = store.all('VM');
  let made = '';

  assert.throws(() => store.tx(() => {
    store.update('VM', x, { name_label: 'rolled back', other_config: { k: 'v' } });
    made = store.create('VM', { name_label: 'never' });
    store.create('VIF', { VM: x, network: net, device: '0' });
    store.destroy('VM', doomedLater);
    // Reads inside the transaction see its writes (and fill memory with them)...
    assert.equal(store.get('VM', x)!.name_label, 'rolled back');
    assert.equal((store.view('VM', x)!.VIFs as string[]).length, 1);
    assert.ok(store.all('VM').includes(made));
    assert.equal(store.exists('VM', doomedLater), false);
    assert.equal((store.viewAll('network').get(net)!.VIFs as string[]).length, 1);
    throw new Error('boom');
  }), /boom/);

  // ...which must all be forgotten once it rolls back.
  assert.equal(store.get('VM', x)!.name_label, 'x');
  assert.deepEqual(store.view('VM', x)!.VIFs, []);
  assert.deepEqual(store.get('network', net)!.VIFs, []);
  assert.equal(store.exists('VM', made), false);
  assert.equal(store.get('VM', made), undefined);
  assert.equal(store.exists('VM', doomedLater), true);
  assert.equal(store.get('VM', doomedLater)!.name_label, 'kept');
  assert.deepEqual(store.all('VM'), order, 'in the same order as before');
  assert.deepEqual(everything(store), before);
  assert.deepEqual(everything(store), fresh(file));

  // A failed nested call inside a transaction that goes on is not a rollback.
  store.tx(() => {
    store.update('VM', z, { name_label: 'z2' });
    assert.throws(() => store.update('VM', 'OpaqueRef:missing', { name_label: 'nope' }));
  });
  assert.equal(store.get('VM', z)!.name_label, 'z2');
  assert.deepEqual(everything(store), fresh(file));
});

test("another connection's commits are seen, though they never went through this store", (t) => {
  const { store, file } = openStore(t);
  const x = store.create('VM', { name_label: 'x' });
  const gone = store.create('VM', { name_label: 'gone' });
  const net = store.create('network', {});
  // Everything in memory first.
  assert.equal(store.all('VM').length, 2);
  assert.equal(store.view('VM', x)!.name_label, 'x');
  assert.deepEqual(store.get('network', net)!.VIFs, []);

  const other = new ObjectStore(file);
  let made = '';
  let vif = '';
  try {
    other.update('VM', x, { name_label: 'renamed elsewhere' });
    made = other.create('VM', { name_label: 'made elsewhere' });
    vif = other.create('VIF', { VM: x, network: net, device: '0' });
    other.destroy('VM', gone);
  } finally {
    other.close();
  }
  assert.equal(store.get('VM', x)!.name_label, 'renamed elsewhere');
  assert.deepEqual(store.view('VM', x)!.VIFs, [vif]);
  assert.deepEqual(store.get('network', net)!.VIFs, [vif]);
  assert.deepEqual(store.all('VM'), [x, made]);
  assert.equal(store.exists('VM', gone), false);
  assert.deepEqual(everything(store), fresh(file));
});

test("the encoders' kept bytes belong to one record and follow its writes", (t) => {
  const { store } = openStore(t);
  const vm = store.create('VM', { name_label: 'first <name>' });
  const recType = classes.get('VM')!.messages.get('get_record')!.result;
  const allType = classes.get('VM')!.messages.get('get_all_records')!.result;
  const xml = () => typedSuccessBody(recType, store.view('VM', vm)).toBuffer().toString();
  const xmlAll = () => typedSuccessBody(allType, Object.fromEntries(store.viewAll('VM'))).toBuffer().toString();
  const json = (id: number) => JSON.parse(encodeJson({ method: 'VM.get_record', params: [], id, v2: true }, { ok: true, value: store.view('VM', vm), type: recType }).toBuffer().toString());
  const jsonAll = () => JSON.parse(encodeJson({ method: 'VM.get_all_records', params: [], id: 1, v2: false }, { ok: true, value: Object.fromEntries(store.viewAll('VM')), type: allType }).toBuffer().toString());

  const first = xml();
  assert.ok(first.includes('<name>name_label</name><value>first &lt;name&gt;</value>'));
  assert.equal(xml(), first);
  assert.ok(xmlAll().includes(`<member><name>${vm}</name><value><struct><member><name>uuid</name>`));
  assert.ok(xmlAll().includes('first &lt;name&gt;'));
  assert.deepEqual(json(7), { jsonrpc: '2.0', result: store.get('VM', vm), id: 7 });
  assert.deepEqual(json(8).id, 8, 'the kept JSON is the record alone, not the answer around it');

  store.update('VM', vm, { name_label: 'second' });
  assert.ok(xml().includes('<name>name_label</name><value>second</value>'));
  assert.ok(!xml().includes('first'));
  assert.ok(xmlAll().includes('second') && !xmlAll().includes('first'));
  assert.equal(json(9).result.name_label, 'second');
  assert.deepEqual(jsonAll(), { result: { [vm]: store.get('VM', vm) }, error: null, id: 1 });
});
