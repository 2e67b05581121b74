// The implicit messages of every class, driven by the datamodel: field getters and
// setters, add_to/remove_from, get_record, get_all(_records), get_by_uuid,
// get_by_name_label, create and destroy.
import type { MessageModel } from '../datamodel/model.js';
import type { ApiRecord } from '../db/store.js';
import type { ApiContext } from './context.js';
import { fail } from '../core/errors.js';
import { createObject, destroyObject } from '../db/objects.js';

export function runGeneric(ctx: ApiContext, m: MessageModel, args: unknown[]): unknown {
  const store = ctx.daemon.store.any;
  const cls = m.cls;
  const f = m.field;
  switch (m.kind) {
    // Reads answer the store's shared records (frozen, not copied): they only go to the encoder.
    case 'get':
      return store.view(cls, args[0] as string)![f!.name];
    case 'set':
      store.update(cls, args[0] as string, { [f!.name]: args[1] });
      return undefined;
    case 'add_to':
    case 'remove_from': {
      const kind = m.kind;
      return store.tx(() => {
        const current = store.get(cls, args[0] as string)![f!.name];
        store.update(cls, args[0] as string, { [f!.name]: edit(kind, current, args.slice(1)) });
      });
    }
    case 'get_record':
      return store.view(cls, args[0] as string);
    case 'get_all':
      return store.all(cls);
    case 'get_all_records':
      return Object.fromEntries(store.viewAll(cls));
    case 'get_by_uuid': {
      const ref = store.refByUuid(cls, args[0] as string);
      if (!ref) fail('UUID_INVALID', cls, args[0]);
      return ref;
    }
    case 'get_by_name_label':
      return store.refsByNameLabel(cls, args[0] as string);
    case 'create':
      return createObject(ctx.daemon.store, cls, args[0] as ApiRecord);
    case 'destroy':
      destroyObject(ctx.daemon.store, cls, args[0] as string);
      return undefined;
    default:
      throw new Error(`${m.wireName} is not an implicit message`);
  }
}

/** add_to/remove_from on a map (key, value) or a set (value); the manual says adding
 * an existing key overwrites, and adding an element already in a set does nothing. */
function edit(kind: 'add_to' | 'remove_from', current: unknown, args: unknown[]): unknown {
  if (Array.isArray(current)) {
    const [v] = args;
    if (kind === 'add_to') return current.includes(v) ? current : [...current, v];
    return current.filter((x) => x !== v);
  }
  const map = { ...(current as Record<string, unknown>) };
  const [k, v] = args as [string, unknown];
  // defined, not assigned, so that a key such as "__proto__" stays a plain key
  if (kind === 'add_to') Object.defineProperty(map, k, { value: v, enumerable: true, writable: true, configurable: true });
  else delete map[k];
  return map;
}
