// The implicit messages of every class, over the real RPC front end (JSON-RPC and
// XML-RPC): reads on every stored class and every field, every generic setter and
// add_to/remove_from, and create/destroy on every class whose constructor is generic.
//
// Once the daemon has started (and reconciled what it finds), one object of every stored
// class (except session and the pool) is written into its database with a sample value in
// every field, through a second connection, so every getter is checked against a known
// value. Live-state fields get their quiet values so that nothing in the daemon acts on them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { classes, enums, NULL_REF, type ClassModel, type FieldModel } from '../../src/datamodel/model.js';
import type { ApiType } from '../../src/datamodel/types.js';
import { ObjectStore, newRef, type ApiRecord } from '../../src/db/store.js';
import { formatDateTime } from '../../src/core/datetime.js';
import { handlers } from '../../src/api/handlers.js';
import { jsonCall, login, sampleValue, startDaemon, tempDir, xmlCall, type TestDaemon } from '../helpers/daemon.js';

const stored = [...classes.values()].filter((c) => c.stored);
/** Classes that get a seeded object: sessions come from logins, and there is one pool. */
const seededClasses = stored.filter((c) => c.name !== 'session' && c.name !== 'pool');

const QUIET: Record<string, ApiRecord> = {
  VM: { power_state: 'Halted', is_control_domain: false, is_a_template: false, domid: -1 },
  // A pending task is failed at start (its outcome is unknown); an old finished one is collected.
  task: { status: 'success', created: formatDateTime(new Date()), finished: formatDateTime(new Date()), progress: 1, current_operations: {} },
  PBD: { currently_attached: false },
  VBD: { currently_attached: false, type: 'Disk', mode: 'RW', empty: false },
  VIF: { currently_attached: false, MAC: '00:16:3e:00:00:01', device: '0' },
  VDI: { type: 'user', read_only: false, sharable: false },
  SR: { content_type: 'user', type: 'dummy' },
  PIF: { currently_attached: false },
};

let d: TestDaemon;
let session: string;
let stateDir: string;
const seeded = new Map<string, string>();
const seededValues = new Map<string, ApiRecord>();
let poolRef: string;
let hostRef: string;

/** The object a sample ref points at: the seeded one of that class, or a real one. */
function refFor(cls: string): string {
  if (cls === 'session') return session ?? NULL_REF;
  if (cls === 'pool') return poolRef;
  return seeded.get(cls) ?? NULL_REF;
}

before(async () => {
  stateDir = tempDir('xapid-generic-');
  d = await startDaemon({ stateDir });
  session = await login(d.url);
  const pools = (await jsonCall(d.url, 'pool.get_all', [session])).result as string[];
  assert.equal(pools.length, 1);
  poolRef = pools[0]!;
  hostRef = (await jsonCall(d.url, 'pool.get_master', [session, poolRef])).result as string;
  assert.ok(poolRef && hostRef);
  // SQLite lets a second process write the same file; the daemon reads objects from it.
  const store = new ObjectStore(path.join(stateDir, 'xapid.db'));
  try {
    for (const c of seededClasses) seeded.set(c.name, newRef());
    store.tx(() => {
      for (const c of seededClasses) {
        const values: ApiRecord = {};
        c.storedFields.forEach((f, i) => {
          values[f.name] = f.name === 'uuid' ? randomUUID() : sampleValue(f.type, i, refFor);
        });
        Object.assign(values, QUIET[c.name]);
        seededValues.set(c.name, values);
        store.any.create(c.name, values, seeded.get(c.name));
      }
    });
  } finally {
    store.close();
  }
});

after(async () => {
  await d?.cleanup();
  rmSync(stateDir, { recursive: true, force: true });
});

// ---- calls -------------------------------------------------------------------

class Failure extends Error {
  constructor(readonly description: string[]) {
    super(description.join(' '));
  }
}

async function json(method: string, ...params: unknown[]): Promise<any> {
  const r = await jsonCall(d.url, method, [session, ...params]);
  if (r.error) throw new Failure([r.error.message, ...r.error.data]);
  assert.ok('result' in r, `${method}: ${JSON.stringify(r)}`);
  return r.result;
}

async function xml(method: string, ...params: unknown[]): Promise<any> {
  const r = await xmlCall(d.url, method, [session, ...params]);
  if (r.Status === 'Failure') throw new Failure(r.ErrorDescription);
  assert.equal(r.Status, 'Success', `${method}: ${JSON.stringify(r)}`);
  return r.Value;
}

/** Both protocols fail the same way; returns the ErrorDescription. */
async function fails(method: string, params: unknown[], code: string, errParams?: string[]): Promise<string[]> {
  const out: string[][] = [];
  for (const call of [json, xml]) {
    try {
      await call(method, ...params);
      assert.fail(`${method} (${call.name}) should fail with ${code}`);
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      assert.equal(e.description[0], code, `${method} (${call.name}): ${e.description.join(' ')}`);
      if (errParams) assert.deepEqual(e.description.slice(1), errParams, `${method} (${call.name}) error parameters`);
      out.push(e.description);
    }
  }
  assert.deepEqual(out[0], out[1], `${method}: same error on both protocols`);
  return out[0]!;
}

// ---- types -------------------------------------------------------------------

/** Asserts that v (as JSON-RPC gives it) is a value of type t. */
function checkType(t: ApiType, v: unknown, where: string): void {
  switch (t.kind) {
    case 'string': assert.equal(typeof v, 'string', where); break;
    case 'int': assert.ok(Number.isSafeInteger(v), `${where}: int, got ${JSON.stringify(v)}`); break;
    case 'float': assert.equal(typeof v, 'number', where); break;
    case 'bool': assert.equal(typeof v, 'boolean', where); break;
    case 'datetime': assert.match(v as string, /^\d{8}T\d\d:\d\d:\d\dZ$/, where); break;
    case 'ref': assert.match(v as string, /^OpaqueRef:/, where); break;
    case 'enum': assert.ok(enums[t.name]!.includes(v as string), `${where}: ${String(v)} is not a ${t.name}`); break;
    case 'set':
      assert.ok(Array.isArray(v), `${where}: a set`);
      v.forEach((x, i) => checkType(t.of, x, `${where}[${i}]`));
      break;
    case 'map':
      assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${where}: a map`);
      for (const [k, x] of Object.entries(v as object)) checkType(t.value, x, `${where}.${k}`);
      break;
    case 'record': {
      const c = classes.get(t.cls)!;
      assert.deepEqual(Object.keys(v as object), c.recordFields.map((f) => f.name), `${where}: the record's fields`);
      for (const f of c.recordFields) checkType(f.type, (v as ApiRecord)[f.name], `${where}.${f.name}`);
      break;
    }
    default: assert.fail(`${where}: unexpected type ${t.kind}`);
  }
}

/** An XML-RPC value (as the xmlrpc deserializer gives it) in its JSON-RPC form, checking
 * xapi's encodings on the way: ints bare (decoded as strings), doubles, booleans, dateTime. */
function fromXml(t: ApiType, v: unknown, where: string): unknown {
  switch (t.kind) {
    case 'string': case 'ref': case 'enum':
      assert.equal(typeof v, 'string', where);
      return v;
    case 'int':
      assert.equal(typeof v, 'string', `${where}: an int is sent bare`);
      assert.match(v as string, /^-?\d+$/, where);
      return Number(v);
    case 'float':
      assert.equal(typeof v, 'number', `${where}: a float is a <double>`);
      return v;
    case 'bool':
      assert.equal(typeof v, 'boolean', `${where}: a <boolean>`);
      return v;
    case 'datetime':
      assert.ok(v instanceof Date, `${where}: a <dateTime.iso8601>`);
      return formatDateTime(v);
    case 'void':
      assert.equal(v, '', where);
      return '';
    case 'set':
      assert.ok(Array.isArray(v), `${where}: an <array>`);
      return v.map((x, i) => fromXml(t.of, x, `${where}[${i}]`));
    case 'map':
      assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${where}: a <struct>`);
      return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, fromXml(t.value, x, `${where}.${k}`)]));
    case 'record': {
      const c = classes.get(t.cls)!;
      assert.deepEqual(Object.keys(v as object), c.recordFields.map((f) => f.name), `${where}: the record's fields`);
      return Object.fromEntries(c.recordFields.map((f) => [f.name, fromXml(f.type, (v as ApiRecord)[f.name], `${where}.${f.name}`)]));
    }
    default:
      assert.fail(`${where}: unexpected type ${t.kind}`);
  }
}

/** Reads with both protocols; checks they agree and the type; returns the JSON value. */
async function read(m: string, t: ApiType, ...params: unknown[]): Promise<any> {
  const [j, x] = await Promise.all([json(m, ...params), xml(m, ...params)]);
  checkType(t, j, m);
  assert.deepEqual(fromXml(t, x, m), j, `${m}: XML-RPC and JSON-RPC agree`);
  return j;
}

/** A value of the wrong type for t, and the error it must give. */
function wrongValue(t: ApiType): [unknown, string] {
  switch (t.kind) {
    case 'string': case 'ref': return [42, 'FIELD_TYPE_ERROR'];
    case 'int': case 'float': return ['twelve', 'FIELD_TYPE_ERROR'];
    case 'bool': return ['yes', 'FIELD_TYPE_ERROR'];
    case 'datetime': return ['yesterday', 'FIELD_TYPE_ERROR'];
    case 'enum': return ['NoSuchValue', 'INVALID_VALUE'];
    case 'set': return [{ a: 'b' }, 'FIELD_TYPE_ERROR'];
    case 'map': return [['a'], 'FIELD_TYPE_ERROR'];
    default: throw new Error(`no wrong value for ${t.kind}`);
  }
}

const recordType = (c: ClassModel): ApiType => ({ kind: 'record', cls: c.name });
const refSetType = (c: ClassModel): ApiType => ({ kind: 'set', of: { kind: 'ref', cls: c.name } });

/** What get_record must give for the seeded object of c: the seeded stored values plus the
 * computed sides of bound pairs (the seeded objects whose field points at it). */
function expectedSeeded(c: ClassModel): ApiRecord {
  const values = seededValues.get(c.name)!;
  const out: ApiRecord = {};
  for (const f of c.recordFields) {
    const r = f.computedFrom;
    if (!r) {
      out[f.name] = values[f.name];
      continue;
    }
    const other = seeded.get(r.one.cls);
    out[f.name] = other && seededValues.get(r.one.cls)![r.one.field] === seeded.get(c.name) ? [other] : [];
  }
  return out;
}

// ---- reads on every stored class -----------------------------------------------

test('every stored class answers get_all, get_all_records, get_record, get_by_uuid, get_by_name_label and every getter', { concurrency: true }, async (t) => {
  await Promise.all(stored.map((c) =>
    t.test(c.name, async () => {
      const has = (n: string) => !!c.messages.get(n) && !c.messages.get(n)!.removed;
      /** A message the class does not have (or no longer has) is refused the right way. */
      const absent = (n: string, params: unknown[]) =>
        fails(`${c.name}.${n}`, params, c.messages.get(n)?.removed ? 'MESSAGE_REMOVED' : 'MESSAGE_METHOD_UNKNOWN');
      const target = c.name === 'session' ? session : c.name === 'pool' ? poolRef : seeded.get(c.name)!;

      let all = [target];
      if (has('get_all')) {
        all = await read(`${c.name}.get_all`, refSetType(c)) as string[];
        assert.ok(all.includes(target), `${c.name}.get_all lists the known object`);
        assert.equal(new Set(all).size, all.length, 'no duplicates');
      } else {
        await absent('get_all', []);
      }

      const one = new Map<string, ApiRecord>();
      if (has('get_record')) {
        await Promise.all(all.map(async (r) => one.set(r, await read(`${c.name}.get_record`, recordType(c), r))));
      } else {
        await absent('get_record', [target]);
      }
      // What the object holds: get_record's answer, or what was stored when there is none.
      const rec = one.get(target) ?? expectedSeeded(c);
      if (seeded.has(c.name)) assert.deepEqual(rec, expectedSeeded(c), `${c.name}: the record holds what was stored`);
      if (c.name === 'pool') assert.equal(rec.master, hostRef);

      if (has('get_all_records')) {
        const records = await read(`${c.name}.get_all_records`, { kind: 'map', key: { kind: 'ref', cls: c.name }, value: recordType(c) }) as Record<string, ApiRecord>;
        assert.deepEqual(Object.keys(records).sort(), [...all].sort(), 'get_all_records has the refs of get_all');
        for (const r of all) {
          assert.deepEqual(records[r], one.get(r), `${c.name} ${r}: get_all_records agrees with get_record`);
        }
      } else {
        await absent('get_all_records', []);
      }

      // Every getter gives the record's field; removed fields' getters are refused.
      await Promise.all([...c.fields.values()].map(async (f) => {
        const getter = `${c.name}.get_${f.name}`;
        assert.equal(c.messages.get(`get_${f.name}`)?.kind, 'get', `${getter} is a generic getter`);
        if (f.removed) {
          await fails(getter, [target], 'MESSAGE_REMOVED');
          return;
        }
        const v = await read(getter, f.type, target);
        if (c.name === 'session' && f.name === 'last_active') return;
        assert.deepEqual(v, rec[f.name], `${getter} agrees with the record`);
      }));

      // get_by_uuid, and UUID_INVALID for a uuid that names nothing.
      const bad = randomUUID();
      if (has('get_by_uuid')) {
        assert.equal(await read(`${c.name}.get_by_uuid`, { kind: 'ref', cls: c.name }, rec.uuid), target);
        await fails(`${c.name}.get_by_uuid`, [bad], 'UUID_INVALID', [c.name, bad]);
      } else {
        await absent('get_by_uuid', [bad]);
      }

      if (has('get_by_name_label')) {
        assert.ok(c.hasNameLabel);
        const found = await read(`${c.name}.get_by_name_label`, refSetType(c), rec.name_label);
        assert.ok(found.includes(target), `${c.name}.get_by_name_label finds the object`);
        for (const r of found) assert.equal(await json(`${c.name}.get_name_label`, r), rec.name_label);
        assert.deepEqual(await read(`${c.name}.get_by_name_label`, refSetType(c), `no such label ${randomUUID()}`), []);
      } else {
        await absent('get_by_name_label', ['x']);
      }

      // A ref that names nothing, or an object of another class.
      const bogus = `OpaqueRef:${randomUUID()}`;
      const other = c.name === 'pool' ? hostRef : poolRef;
      const getter = `${c.name}.get_${c.recordFields[0]!.name}`;
      await fails(getter, [bogus], 'HANDLE_INVALID', [c.name, bogus]);
      await fails(getter, [other], 'HANDLE_INVALID', [c.name, other]);
      if (has('get_record')) await fails(`${c.name}.get_record`, [bogus], 'HANDLE_INVALID', [c.name, bogus]);
    })));
});

// ---- setters ------------------------------------------------------------------

/** The object of class c the tests read and write. */
const targetOf = (c: ClassModel) => (c.name === 'session' ? session : c.name === 'pool' ? poolRef : seeded.get(c.name)!);
/** A generic message of class c that no handler overrides. */
const generic = (c: ClassModel, name: string, kind: string) => {
  const m = c.messages.get(name);
  return !!m && m.kind === kind && !m.removed && !handlers.has(m.wireName);
};

test('every generic setter and add_to/remove_from of every class round-trips over both protocols', { concurrency: true }, async (t) => {
  let setters = 0;
  await Promise.all(stored.map((c) => t.test(c.name, async () => {
    const ref = targetOf(c);
    // Every RW field has a setter; a field without one has no message of that name.
    for (const f of c.recordFields.filter((x) => x.qualifier === 'RW')) {
      assert.equal(c.messages.get(`set_${f.name}`)?.kind, 'set', `${c.name}.${f.name} is RW, so it has a setter`);
    }
    await Promise.all(c.recordFields.filter((f) => !c.messages.has(`set_${f.name}`)).map((f) =>
      fails(`${c.name}.set_${f.name}`, [ref, sampleValue(f.type, 1, refFor)], 'MESSAGE_METHOD_UNKNOWN')));

    await Promise.all(c.recordFields.filter((f) => generic(c, `set_${f.name}`, 'set')).map(async (f) => {
      setters++;
      const get = `${c.name}.get_${f.name}`;
      const set = `${c.name}.set_${f.name}`;
      const v1 = sampleValue(f.type, 11, refFor);
      const v2 = f.type.kind === 'ref' ? NULL_REF : sampleValue(f.type, 12, refFor);
      assert.equal(await json(set, ref, v1), '');
      assert.deepEqual(await read(get, f.type, ref), v1, `${set} over JSON-RPC`);
      assert.equal(await xml(set, ref, v2), '');
      assert.deepEqual(await read(get, f.type, ref), v2, `${set} over XML-RPC`);
      const [wrong, code] = wrongValue(f.type);
      await fails(set, [ref, wrong], code);
      if (f.type.kind === 'ref') await fails(set, [ref, `OpaqueRef:${randomUUID()}`], 'HANDLE_INVALID');
      assert.deepEqual(await json(get, ref), v2, `${set}: a refused value changes nothing`);
      await fails(set, [`OpaqueRef:${randomUUID()}`, v1], 'HANDLE_INVALID');
      if (f.type.kind !== 'map' && f.type.kind !== 'set') {
        assert.ok(!c.messages.has(`add_to_${f.name}`) && !c.messages.has(`remove_from_${f.name}`));
      }

      if (f.type.kind === 'map' && generic(c, `add_to_${f.name}`, 'add_to') && generic(c, `remove_from_${f.name}`, 'remove_from')) {
        const k = String(sampleValue(f.type.key, 21, refFor));
        const val = sampleValue(f.type.value, 21, refFor);
        const val2 = sampleValue(f.type.value, 22, refFor);
        await json(`${c.name}.add_to_${f.name}`, ref, k, val);
        assert.deepEqual(await read(get, f.type, ref), { ...(v2 as object), [k]: val });
        await xml(`${c.name}.add_to_${f.name}`, ref, k, val2);
        assert.deepEqual(await read(get, f.type, ref), { ...(v2 as object), [k]: val2 }, 'adding an existing key overwrites');
        await xml(`${c.name}.remove_from_${f.name}`, ref, k);
        assert.deepEqual(await read(get, f.type, ref), v2);
        await json(`${c.name}.remove_from_${f.name}`, ref, 'no such key');
        assert.deepEqual(await read(get, f.type, ref), v2, 'removing a missing key changes nothing');
        await fails(`${c.name}.add_to_${f.name}`, [`OpaqueRef:${randomUUID()}`, k, val], 'HANDLE_INVALID');
      } else if (f.type.kind === 'set' && generic(c, `add_to_${f.name}`, 'add_to') && generic(c, `remove_from_${f.name}`, 'remove_from')) {
        const e = sampleValue(f.type.of, 31, refFor);
        await json(`${c.name}.add_to_${f.name}`, ref, e);
        await xml(`${c.name}.add_to_${f.name}`, ref, e);
        const withE = await read(get, f.type, ref) as unknown[];
        assert.equal(withE.filter((x) => x === e).length, 1, 'a set holds an element once');
        await json(`${c.name}.remove_from_${f.name}`, ref, e);
        assert.ok(!(await read(get, f.type, ref) as unknown[]).includes(e));
      }
    }));
  })));
  assert.ok(setters > 50, `${setters} setters were checked`);
});

// ---- generic constructors and destroy ----------------------------------------------

/** Values real clients would send for fields a class's own checks may look at. */
const REALISTIC: Record<string, ApiRecord> = {
  VIF: { MAC: '00:16:3e:12:34:56', device: '1', MTU: 1500 },
  VBD: { userdevice: '1', mode: 'RW', type: 'Disk', empty: false, bootable: false },
  VDI: { type: 'user', sharable: false, read_only: false, virtual_size: 4096 },
  VM: { memory_static_max: 2 ** 28, memory_dynamic_max: 2 ** 28, memory_dynamic_min: 2 ** 24, memory_static_min: 2 ** 24, VCPUs_max: 1, VCPUs_at_startup: 1, actions_after_crash: 'restart', is_a_template: false },
  PBD: { device_config: { location: '/tmp/x' } },
};

const settable = (f: FieldModel) => (f.qualifier === 'RW' || f.qualifier === 'RO/constructor') && !f.removed && !f.computedFrom;

function requiredArgs(c: ClassModel): ApiRecord {
  const args: ApiRecord = {};
  c.storedFields.forEach((f, i) => {
    if (f.required) args[f.name] = REALISTIC[c.name]?.[f.name] ?? sampleValue(f.type, i + 3, refFor);
  });
  return args;
}

/** Classes whose constructor is the generic one (an implicit create no handler overrides). */
const creatable = stored.filter((c) => generic(c, 'create', 'create'));

test('some classes have the generic constructor', () => {
  assert.ok(creatable.length >= 1, 'at least one class (console, user) has it');
  for (const c of creatable) assert.ok(generic(c, 'destroy', 'destroy') || handlers.has(`${c.name}.destroy`), `${c.name}.destroy exists`);
});

test('every generic constructor and destroy works as the datamodel says', { concurrency: true }, async (t) => {
  await Promise.all(creatable.map((c) =>
    t.test(c.name, async () => {
      const required = c.storedFields.filter((f) => f.required);
      const args = requiredArgs(c);
      // How many objects the class has (when it can list them; user cannot).
      const count = async () => (c.messages.get('get_all') ? (await json(`${c.name}.get_all`)).length : 0);
      const before = await count();

      // A missing required field, or one of the wrong type, is refused and creates nothing.
      for (const f of required) {
        const { [f.name]: _gone, ...partial } = args;
        await fails(`${c.name}.create`, [partial], 'FIELD_TYPE_ERROR', [f.name]);
        if (f.type.kind !== 'enum') await fails(`${c.name}.create`, [{ ...args, [f.name]: wrongValue(f.type)[0] }], 'FIELD_TYPE_ERROR', [f.name]);
      }
      assert.equal(await count(), before, 'nothing was created by the refused calls');

      // Create with only the required fields, over each protocol.
      const ref = await json(`${c.name}.create`, args);
      const refX = await xml(`${c.name}.create`, args);
      for (const r of [ref, refX]) {
        assert.match(r, /^OpaqueRef:[0-9a-f-]{36}$/);
        const rec = await read(`${c.name}.get_record`, recordType(c), r) as ApiRecord;
        assert.match(rec.uuid as string, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        for (const f of c.recordFields) {
          if (f.required) assert.deepEqual(rec[f.name], args[f.name], `${c.name}.${f.name} was given`);
          else if (settable(f)) assert.deepEqual(rec[f.name], f.initial, `${c.name}.${f.name} has its default`);
        }
        const metrics = c.fields.get('metrics');
        if (metrics && !metrics.removed && metrics.type.kind === 'ref') {
          assert.notEqual(rec.metrics, NULL_REF, `${c.name} gets a metrics object`);
          await read(`${metrics.type.cls}.get_record`, recordType(classes.get(metrics.type.cls)!), rec.metrics);
        }
      }
      assert.notEqual((await json(`${c.name}.get_record`, ref)).uuid, (await json(`${c.name}.get_record`, refX)).uuid);
      if (c.messages.get('get_all')) assert.equal(await count(), before + 2);

      // Destroy; the object is gone for every read.
      const gone = await json(`${c.name}.get_record`, ref);
      assert.equal(await json(`${c.name}.destroy`, ref), '');
      assert.equal(await xml(`${c.name}.destroy`, refX), '');
      for (const r of [ref, refX]) {
        await fails(`${c.name}.get_record`, [r], 'HANDLE_INVALID', [c.name, r]);
        await fails(`${c.name}.destroy`, [r], 'HANDLE_INVALID', [c.name, r]);
        await fails(`${c.name}.get_uuid`, [r], 'HANDLE_INVALID', [c.name, r]);
      }
      await fails(`${c.name}.get_by_uuid`, [gone.uuid], 'UUID_INVALID', [c.name, gone.uuid]);
      assert.equal(await count(), before);
      if (gone.metrics && gone.metrics !== NULL_REF) {
        const mcls = (c.fields.get('metrics')!.type as { cls: string }).cls;
        await fails(`${mcls}.get_record`, [gone.metrics], 'HANDLE_INVALID', [mcls, gone.metrics]);
      }
    })));
});

/** The records of some objects, for "nothing changed". */
async function records(objs: Array<[string, string]>): Promise<unknown[]> {
  return Promise.all(objs.map(([cls, ref]) => json(`${cls}.get_record`, ref)));
}

test('network.destroy is refused while a VIF uses it, and nothing changes', async () => {
  const net = await json('network.create', requiredArgs(classes.get('network')!));
  const vm = await json('VM.create', requiredArgs(classes.get('VM')!));
  const vif = await json('VIF.create', { ...requiredArgs(classes.get('VIF')!), VM: vm, network: net });
  assert.deepEqual(await json('network.get_VIFs', net), [vif]);
  assert.deepEqual(await json('VM.get_VIFs', vm), [vif]);
  const objs: Array<[string, string]> = [['network', net], ['VIF', vif], ['VM', vm]];
  const before = await records(objs);
  await fails('network.destroy', [net], 'NETWORK_CONTAINS_VIF', [vif]);
  assert.deepEqual(await records(objs), before, 'the refused destroy changed nothing');
  // Once the VIF is gone, the network can go.
  await json('VIF.destroy', vif);
  assert.deepEqual(await json('network.get_VIFs', net), []);
  assert.deepEqual(await json('VM.get_VIFs', vm), []);
  await json('network.destroy', net);
  await fails('network.get_record', [net], 'HANDLE_INVALID', ['network', net]);
  await json('VM.destroy', vm);
});

test('VM.destroy with a VBD leaves no VBD pointing at a missing VM, and keeps the disk', async () => {
  const vm = await json('VM.create', requiredArgs(classes.get('VM')!));
  const vdi = seeded.get('VDI')!;
  const vbd = await json('VBD.create', { ...requiredArgs(classes.get('VBD')!), VM: vm, VDI: vdi });
  assert.deepEqual(await json('VM.get_VBDs', vm), [vbd]);
  assert.ok((await json('VDI.get_VBDs', vdi)).includes(vbd));
  const objs: Array<[string, string]> = [['VM', vm], ['VBD', vbd], ['VDI', vdi]];
  const before = await records(objs);
  let refused: Failure | undefined;
  try {
    await json('VM.destroy', vm);
  } catch (e) {
    if (!(e instanceof Failure)) throw e;
    refused = e;
  }
  if (refused) {
    // Refusing is one consistent answer: then nothing changed.
    assert.notEqual(refused.description[0], 'INTERNAL_ERROR', refused.message);
    assert.deepEqual(await records(objs), before, 'the refused destroy changed nothing');
    await json('VBD.destroy', vbd);
    await json('VM.destroy', vm);
  } else {
    // xapi's answer: the VM's devices go with it.
    await fails('VBD.get_record', [vbd], 'HANDLE_INVALID', ['VBD', vbd]);
  }
  await fails('VM.get_record', [vm], 'HANDLE_INVALID', ['VM', vm]);
  const vbds = await json('VBD.get_all_records') as Record<string, ApiRecord>;
  for (const [r, rec] of Object.entries(vbds)) {
    assert.notEqual(rec.VM, vm, `VBD ${r} points at the destroyed VM`);
  }
  assert.ok(!(await json('VDI.get_VBDs', vdi)).includes(vbd));
  await json('VDI.get_record', vdi);
});

// ---- the generic destroy, in process --------------------------------------------------

test('the generic destroy refuses an object others point at, changing nothing, and takes its metrics with it', async (t) => {
  const { destroyObject, createObject } = await import('../../src/db/objects.js');
  const { XenApiError } = await import('../../src/core/errors.js');
  const dir = tempDir('xapid-lifecycle-');
  const store = new ObjectStore(path.join(dir, 'xapid.db'));
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const refused = (cls: string, ref: string, code: string, params?: string[]) => {
    const before = store.lastChangeId();
    const rec = store.any.get(cls, ref);
    assert.throws(() => destroyObject(store, cls, ref), (e: unknown) => {
      assert.ok(e instanceof XenApiError, String(e));
      assert.equal(e.code, code);
      if (params) assert.deepEqual(e.params, params);
      return true;
    });
    assert.deepEqual(store.any.get(cls, ref), rec, 'the object is unchanged');
    assert.equal(store.lastChangeId(), before, 'nothing was written');
  };

  const vm = createObject(store, 'VM', { ...requiredArgs(classes.get('VM')!), affinity: NULL_REF });
  const metrics = store.get('VM', vm)!.metrics;
  assert.ok(store.exists('VM_metrics', metrics), 'a generic VM gets its metrics object');
  const sr = store.create('SR', {});
  const vdi = store.create('VDI', { SR: sr });
  const vbd = store.create('VBD', { VM: vm, VDI: vdi, userdevice: '0' });
  const net = store.create('network', {});
  const vif = store.create('VIF', { VM: vm, network: net, device: '0' });
  const host = store.create('host', {});
  const pif = store.create('PIF', { host, network: store.create('network', {}) });
  const pifNet = store.get('PIF', pif)!.network;

  refused('VM', vm, 'OPERATION_NOT_ALLOWED');
  refused('network', net, 'NETWORK_CONTAINS_VIF', [vif]);
  refused('network', pifNet, 'NETWORK_CONTAINS_PIF', [pif]);
  refused('VDI', vdi, 'VDI_IN_USE', [vdi, 'destroy']);
  refused('SR', sr, 'OPERATION_NOT_ALLOWED');

  destroyObject(store, 'VBD', vbd);
  destroyObject(store, 'VIF', vif);
  destroyObject(store, 'VM', vm);
  assert.equal(store.exists('VM', vm), false);
  assert.equal(store.exists('VM_metrics', metrics), false, 'its metrics went with it');
  destroyObject(store, 'network', net);
  destroyObject(store, 'VDI', vdi);
  assert.deepEqual(store.get('SR', sr)!.VDIs, []);
  assert.throws(() => destroyObject(store, 'VM', vm), (e: unknown) => e instanceof XenApiError && e.code === 'HANDLE_INVALID');
});
