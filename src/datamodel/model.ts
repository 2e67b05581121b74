// The API model built once at start from the declarations: the single source of truth
// for the dispatcher, argument checking, the database schema, records and the docs.
import { classDecls } from './classes/index.js';
import type { ClassDecl, FieldDecl, GenericName, ParamFacts, Qualifier } from './decl.js';
import { enums } from './enums.js';
import { relations, type Relation } from './relations.js';
import { parseType, typeToString, type ApiType } from './types.js';

export const NULL_REF = 'OpaqueRef:NULL';
export const NEVER = '19700101T00:00:00Z';

export interface FieldModel {
  cls: string;
  name: string;
  type: ApiType;
  typeText: string;
  qualifier: Qualifier;
  release: string;
  removed?: string;
  /** Value a new object gets when the constructor does not set it. */
  initial: unknown;
  /** True when a constructor call must give it (RW or RO/constructor without default). */
  required: boolean;
  /** Present on a `many` side: the field's value is computed from this relation. */
  computedFrom?: Relation;
  /** Present on a `one` side of a bound pair. */
  bound?: Relation;
}

export type AccessorKind = 'get' | 'set' | 'add_to' | 'remove_from';
export type MessageKind = AccessorKind | GenericName | 'custom';

export interface ParamModel {
  name: string;
  type: ApiType;
  typeText: string;
  /** The release that added it, when later than its message's. */
  release?: string;
  hasDefault: boolean;
  default?: unknown;
}

export interface MessageModel {
  cls: string;
  name: string;
  /** `Class.name`, as on the wire. */
  wireName: string;
  kind: MessageKind;
  field?: FieldModel;
  params: ParamModel[];
  /** Parameters after session_id (or all of them for the login calls). */
  args: ParamModel[];
  /** How many args a call must give: trailing ones with a default may be left out. */
  requiredArgs: number;
  takesSession: boolean;
  result: ApiType;
  resultText: string;
  release: string;
  removed?: string;
  errors: readonly string[];
  /** Has an `Async.` form (the manual's section 1.4.3). */
  hasAsync: boolean;
}

export interface ClassModel {
  name: string;
  /** Lower-case name, as the event feed spells it. */
  lower: string;
  fields: Map<string, FieldModel>;
  /** In-scope fields that exist in records (not removed), in declaration order. */
  recordFields: FieldModel[];
  /** Fields with a database column: record fields that are not computed. */
  storedFields: FieldModel[];
  messages: Map<string, MessageModel>;
  hasNameLabel: boolean;
  /** False for `event`, whose records are built from the change log, not stored. */
  stored: boolean;
}

const NO_ASYNC_CLASSES = new Set(['session', 'event', 'task']);

function zeroOf(t: ApiType): unknown {
  switch (t.kind) {
    case 'string': return '';
    case 'int': case 'float': return 0;
    case 'bool': return false;
    case 'datetime': return NEVER;
    case 'ref': return NULL_REF;
    case 'enum': return (enums[t.name] ?? [''])[0];
    case 'set': return [];
    case 'map': return {};
    default: return null;
  }
}

/** Turns xapi's printed default (`{}`, `""`, `0.`, `Null`, `false`) into a value. */
export function parseDefault(t: ApiType, text: string): unknown {
  switch (t.kind) {
    case 'string': return text.startsWith('"') ? JSON.parse(text) : text;
    case 'int': return Number.parseInt(text, 10);
    case 'float': return Number.parseFloat(text);
    case 'bool': return text === 'true';
    case 'ref': return text === 'Null' ? NULL_REF : text;
    case 'set': return [];
    case 'map': return {};
    default: return text;
  }
}

function buildField(cls: string, d: FieldDecl): FieldModel {
  const type = parseType(d.type);
  const hasDefault = d.default !== undefined;
  return {
    cls, name: d.name, type, typeText: d.type, qualifier: d.qualifier, release: d.release, removed: d.removed,
    initial: hasDefault ? parseDefault(type, d.default!) : zeroOf(type),
    required: !hasDefault && (d.qualifier === 'RW' || d.qualifier === 'RO/constructor'),
  };
}

function param(name: string, typeText: string, facts: ParamFacts = {}): ParamModel {
  const type = parseType(typeText);
  const p: ParamModel = { name, type, typeText, release: facts.release, hasDefault: 'default' in facts };
  // The facts give defaults as JSON values; an empty ref is the null ref.
  if (p.hasDefault) p.default = type.kind === 'ref' && !facts.default ? NULL_REF : structuredClone(facts.default);
  return p;
}

function message(
  cls: string, name: string, kind: MessageKind, params: ParamModel[], resultText: string,
  release: string, extra: { removed?: string; errors?: readonly string[]; field?: FieldModel },
): MessageModel {
  const takesSession = params[0]?.name === 'session_id';
  const isCustomOrLifecycle = kind === 'custom' || kind === 'create' || kind === 'destroy';
  const args = takesSession ? params.slice(1) : params;
  let requiredArgs = args.length;
  while (requiredArgs > 0 && args[requiredArgs - 1]!.hasDefault) requiredArgs--;
  return {
    cls, name, wireName: `${cls}.${name}`, kind, field: extra.field, params,
    args, requiredArgs, takesSession,
    result: parseType(resultText), resultText, release, removed: extra.removed,
    errors: extra.errors ?? [],
    hasAsync: isCustomOrLifecycle && !NO_ASYNC_CLASSES.has(cls),
  };
}

function accessorMessages(c: ClassDecl, f: FieldModel): MessageModel[] {
  const self = param('self', `${c.name} ref`);
  const session = param('session_id', 'session ref');
  const common = { removed: f.removed, field: f };
  const out = [message(c.name, `get_${f.name}`, 'get', [session, self], f.typeText, f.release, common)];
  if (f.qualifier !== 'RW') return out;
  out.push(message(c.name, `set_${f.name}`, 'set', [session, self, param('value', f.typeText)], 'void', f.release, common));
  if (f.type.kind === 'map') {
    const kv = [param('key', typeToString(f.type.key)), param('value', typeToString(f.type.value))];
    out.push(message(c.name, `add_to_${f.name}`, 'add_to', [session, self, ...kv], 'void', f.release, common));
    out.push(message(c.name, `remove_from_${f.name}`, 'remove_from', [session, self, kv[0]!], 'void', f.release, common));
  } else if (f.type.kind === 'set') {
    const v = param('value', typeToString(f.type.of));
    out.push(message(c.name, `add_to_${f.name}`, 'add_to', [session, self, v], 'void', f.release, common));
    out.push(message(c.name, `remove_from_${f.name}`, 'remove_from', [session, self, v], 'void', f.release, common));
  }
  return out;
}


function genericMessages(c: ClassDecl): MessageModel[] {
  const session = param('session_id', 'session ref');
  const self = param('self', `${c.name} ref`);
  const sig: Record<GenericName, [ParamModel[], string]> = {
    get_record: [[session, self], `${c.name} record`],
    get_all: [[session], `${c.name} ref set`],
    get_all_records: [[session], `(${c.name} ref -> ${c.name} record) map`],
    get_by_uuid: [[session, param('uuid', 'string')], `${c.name} ref`],
    get_by_name_label: [[session, param('label', 'string')], `${c.name} ref set`],
    create: [[session, param('args', `${c.name} record`)], `${c.name} ref`],
    destroy: [[session, self], 'void'],
  };
  return Object.entries(c.generic).map(([name, g]) => {
    const [params, result] = sig[name as GenericName];
    return message(c.name, name, name as GenericName, params, result, g!.release, { removed: g!.removed });
  });
}

/** `get_f`, `set_f`, `add_to_f`, `remove_from_f` for a field f, whatever its qualifier. */
function accessorOf(name: string, fields: Map<string, FieldModel>): { kind: AccessorKind; field: FieldModel } | undefined {
  const m = /^(get|set|add_to|remove_from)_(.+)$/.exec(name);
  const field = m && fields.get(m[2]!);
  return field ? { kind: m[1] as AccessorKind, field } : undefined;
}

function buildClass(c: ClassDecl): ClassModel {
  const fields = new Map<string, FieldModel>();
  for (const d of c.fields) fields.set(d.name, buildField(c.name, d));
  // A class kept outside the database (event) has no field accessors, as in xapi (in_db=false).
  const stored = c.name !== 'event';
  const messages = new Map<string, MessageModel>();
  if (stored) for (const f of fields.values()) for (const m of accessorMessages(c, f)) messages.set(m.name, m);
  for (const m of genericMessages(c)) messages.set(m.name, m);
  for (const d of c.messages) {
    const params = d.params.map(([n, t, facts]) => param(n, t, facts));
    // Some accessors are declared as custom messages (VM.other_config is RO/constructor yet
    // has set/add_to/remove_from, so that xapi can vet keys): they behave generically
    // unless a handler is registered.
    const accessor = accessorOf(d.name, fields);
    const m = message(c.name, d.name, accessor?.kind ?? 'custom', params, d.result, d.release, { removed: d.removed, errors: d.errors, field: accessor?.field });
    if (accessor) m.hasAsync = !NO_ASYNC_CLASSES.has(c.name);
    messages.set(d.name, m);
  }
  const recordFields = [...fields.values()].filter((f) => !f.removed);
  return {
    name: c.name, lower: c.name.toLowerCase(), fields, recordFields, storedFields: recordFields,
    messages, hasNameLabel: fields.has('name_label'), stored,
  };
}

function link(classes: Map<string, ClassModel>): void {
  for (const r of relations) {
    const one = classes.get(r.one.cls)?.fields.get(r.one.field);
    const many = classes.get(r.many.cls)?.fields.get(r.many.field);
    if (!one || !many) throw new Error(`relation names a missing field: ${r.one.cls}.${r.one.field} / ${r.many.cls}.${r.many.field}`);
    one.bound = r;
    many.computedFrom = r;
  }
  for (const c of classes.values()) c.storedFields = c.recordFields.filter((f) => !f.computedFrom);
}

function build(): Map<string, ClassModel> {
  const classes = new Map<string, ClassModel>();
  for (const d of classDecls) classes.set(d.name, buildClass(d));
  link(classes);
  return classes;
}

/** Every class of API 1.1, by its exact name. */
export const classes: ReadonlyMap<string, ClassModel> = build();

const byLower = new Map([...classes.values()].map((c) => [c.lower, c]));
export function classByAnyCase(name: string): ClassModel | undefined {
  return classes.get(name) ?? byLower.get(name.toLowerCase());
}

export { enums };

/** Every sync `Class.message` on offer, implicit ones included (system.listMethods, host.list_methods). */
export function listMethods(): string[] {
  const out: string[] = [];
  for (const c of classes.values()) for (const m of c.messages.values()) if (!m.removed) out.push(m.wireName);
  return out;
}
