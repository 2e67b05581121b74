// The project's datamodel (src/datamodel) against the reference facts in
// shared/xenapi/datamodel.json: every rio/miami class, field and message is there with
// the same name, type, qualifier, parameters and result; what later releases removed is
// marked removed; nothing from later releases slipped in; every error code exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { classes, enums, parseDefault } from '../../src/datamodel/model.js';
import { errorParams } from '../../src/datamodel/errors.js';
import { parseType, typeToString } from '../../src/datamodel/types.js';

// dist/test/datamodel/ -> repo root -> its sibling shared/
const SHARED = path.join(fileURLToPath(new URL('../../../', import.meta.url)), '..', 'shared');

interface RefField { name: string; type: string; qualifier: string; release: string; default?: string; removed?: string }
interface RefMessage {
  name: string; implicit: boolean; release: string; removed?: string;
  params: Array<{ name: string; type: string }>; result: string; errors: string[];
}
interface RefClass { name: string; release: string | null; fields: RefField[]; messages: RefMessage[]; enums: Array<{ name: string; values: string[] }> }

const ref = JSON.parse(readFileSync(path.join(SHARED, 'xenapi', 'datamodel.json'), 'utf8')) as { classes: RefClass[] };
const refErrors = JSON.parse(readFileSync(path.join(SHARED, 'xenapi', 'errors.json'), 'utf8')) as { errors: Array<{ code: string; params: string[] }> };

const SCOPE = new Set(['rio', 'miami']);
const inScope = (x: { release: string | null }) => x.release !== null && SCOPE.has(x.release);
/** Later messages that an issue named because real clients need them (the event feed of
 * Xen Orchestra and current XenAPI tools). They must match the reference like the rest. */
const EXTRA_MESSAGES = new Set(['event.from', 'event.inject']);
const wanted = (c: RefClass) => (m: RefMessage) => inScope(m) || EXTRA_MESSAGES.has(`${c.name}.${m.name}`);
const refClassInScope = (c: RefClass) => inScope(c) || c.fields.some(inScope) || c.messages.some(inScope);

test('the reference data has the expected API 1.1 counts', () => {
  let fields = 0;
  let messages = 0;
  for (const c of ref.classes) {
    fields += c.fields.filter((f) => inScope(f) && !f.removed).length;
    messages += c.messages.filter((m) => inScope(m) && !m.removed).length;
  }
  assert.equal(fields, 335);
  assert.equal(messages, 708);
});

test('the model has exactly the in-scope classes', () => {
  const expected = ref.classes.filter(refClassInScope).map((c) => c.name).sort();
  assert.equal(expected.length, 30);
  assert.deepEqual([...classes.keys()].sort(), expected);
});

test('every in-scope field is in the model with the same type, qualifier, default and removal', () => {
  let checked = 0;
  for (const rc of ref.classes) {
    const c = classes.get(rc.name);
    for (const rf of rc.fields.filter(inScope)) {
      const where = `${rc.name}.${rf.name}`;
      assert.ok(c, `class ${rc.name} is missing`);
      const f = c.fields.get(rf.name);
      assert.ok(f, `field ${where} is missing`);
      assert.equal(f.name, rf.name, where);
      assert.equal(f.cls, rc.name, where);
      assert.equal(f.typeText, rf.type, `${where} type`);
      // The parsed type prints back as the same spelling.
      assert.equal(typeToString(f.type), rf.type, `${where} parsed type`);
      assert.equal(f.qualifier, rf.qualifier, `${where} qualifier`);
      assert.equal(f.release, rf.release, `${where} release`);
      assert.equal(f.removed, rf.removed, `${where} removed`);
      if (rf.default !== undefined) {
        assert.deepEqual(f.initial, parseDefault(parseType(rf.type), rf.default), `${where} default`);
        assert.equal(f.required, false, `${where} has a default, so a constructor need not give it`);
      }
      if (rf.removed) {
        assert.ok(!c.recordFields.includes(f), `${where} was removed in ${rf.removed}: not in records`);
      } else {
        assert.ok(c.recordFields.includes(f), `${where} is in records`);
      }
      if (!rf.removed) checked++;
    }
  }
  assert.equal(checked, 335);
});

test('the model has no field that is out of scope or unknown to the reference', () => {
  let live = 0;
  for (const c of classes.values()) {
    const rc = ref.classes.find((x) => x.name === c.name)!;
    for (const f of c.fields.values()) {
      const rf = rc.fields.find((x) => x.name === f.name);
      assert.ok(rf, `${c.name}.${f.name} is not in the reference datamodel`);
      assert.ok(inScope(rf), `${c.name}.${f.name} is from ${rf.release}, outside API 1.1`);
      if (!f.removed) live++;
    }
    // Records list exactly the live fields, in declaration order.
    assert.deepEqual(c.recordFields.map((f) => f.name), rc.fields.filter((x) => inScope(x) && !x.removed).map((x) => x.name), `${c.name} record fields`);
  }
  assert.equal(live, 335);
});

test('every in-scope message is in the model with the same parameters, result and errors', () => {
  let checked = 0;
  for (const rc of ref.classes) {
    const c = classes.get(rc.name);
    for (const rm of rc.messages.filter(wanted(rc))) {
      const where = `${rc.name}.${rm.name}`;
      assert.ok(c, `class ${rc.name} is missing`);
      const m = c.messages.get(rm.name);
      assert.ok(m, `message ${where} is missing`);
      assert.equal(m.wireName, where);
      if (rm.implicit) {
        assert.notEqual(m.kind, 'custom', `${where} is implicit`);
      } else if (m.kind !== 'custom') {
        // A declared message shaped like an accessor (VM.set_other_config) may act as one.
        assert.ok(m.field && m.name === `${m.kind}_${m.field.name}`, `${where} is declared, not implicit`);
      }
      assert.deepEqual(m.params.map((p) => [p.name, p.typeText]), rm.params.map((p) => [p.name, p.type]), `${where} parameters`);
      for (const p of m.params) assert.equal(typeToString(p.type), p.typeText, `${where} ${p.name} parsed type`);
      assert.equal(m.takesSession, rm.params[0]?.name === 'session_id', `${where} takes a session`);
      assert.deepEqual(m.args.map((p) => p.name), rm.params.slice(m.takesSession ? 1 : 0).map((p) => p.name), `${where} args`);
      assert.equal(m.resultText, rm.result, `${where} result`);
      assert.equal(typeToString(m.result), rm.result, `${where} parsed result`);
      assert.equal(m.release, rm.release, `${where} release`);
      assert.equal(m.removed, rm.removed, `${where} removed`);
      assert.deepEqual([...m.errors].sort(), [...rm.errors].sort(), `${where} errors`);
      if (m.field) assert.equal(m.removed, m.field.removed, `${where}: an accessor is removed with its field`);
      if (!rm.removed && inScope(rm)) checked++;
    }
  }
  assert.equal(checked, 708);
});

test('the model has no message that is out of scope or unknown to the reference', () => {
  let live = 0;
  for (const c of classes.values()) {
    const rc = ref.classes.find((x) => x.name === c.name)!;
    for (const m of c.messages.values()) {
      const rm = rc.messages.find((x) => x.name === m.name);
      assert.ok(rm, `${m.wireName} is not in the reference datamodel`);
      assert.ok(wanted(rc)(rm), `${m.wireName} is from ${rm.release}, outside API 1.1`);
      if (!m.removed && inScope(rm)) live++;
    }
  }
  assert.equal(live, 708);
});

test('Async forms exist for declared messages and create/destroy only, never for session, event or task', () => {
  let async = 0;
  for (const rc of ref.classes) {
    const c = classes.get(rc.name)!;
    for (const rm of rc.messages.filter(wanted(rc))) {
      const m = c.messages.get(rm.name)!;
      const expected = (!rm.implicit || rm.name === 'create' || rm.name === 'destroy') && !['session', 'event', 'task'].includes(rc.name);
      assert.equal(m.hasAsync, expected, m.wireName);
      if (expected) async++;
    }
  }
  assert.ok(async > 100, `${async} messages have an Async form`);
  assert.equal(classes.get('VM')!.messages.get('get_name_label')!.hasAsync, false);
  assert.equal(classes.get('VM')!.messages.get('start')!.hasAsync, true);
});

test('every enumeration used in scope has the reference values', () => {
  const refEnums = new Map<string, string[]>();
  for (const c of ref.classes) for (const e of c.enums) refEnums.set(e.name, e.values);
  const used = new Set<string>();
  const collect = (t: ReturnType<typeof parseType>): void => {
    if (t.kind === 'enum') used.add(t.name);
    else if (t.kind === 'set') collect(t.of);
    else if (t.kind === 'map') { collect(t.key); collect(t.value); }
  };
  for (const c of classes.values()) {
    for (const f of c.fields.values()) collect(f.type);
    for (const m of c.messages.values()) { collect(m.result); for (const p of m.params) collect(p.type); }
  }
  assert.ok(used.size > 10);
  for (const name of used) {
    assert.ok(refEnums.has(name), `enum ${name} is not in the reference`);
    assert.deepEqual(enums[name], refEnums.get(name), `enum ${name}`);
  }
});

test('every error code a message lists exists, with the reference parameter names', () => {
  const known = errorParams as Record<string, readonly string[]>;
  let listed = 0;
  for (const c of ref.classes) {
    for (const m of c.messages) {
      for (const code of m.errors) {
        listed++;
        assert.ok(Object.hasOwn(known, code), `${c.name}.${m.name} lists ${code}, missing from src/datamodel/errors.ts`);
      }
    }
  }
  assert.ok(listed > 100);
  for (const e of refErrors.errors) {
    assert.ok(Object.hasOwn(known, e.code), `${e.code} is missing from src/datamodel/errors.ts`);
    assert.deepEqual(known[e.code], e.params, `${e.code} parameters`);
  }
  assert.equal(Object.keys(known).length, refErrors.errors.length, 'no error code beyond the reference');
});
