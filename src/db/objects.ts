// Generic create and destroy: constructor checks, the objects a class owns (its
// metrics record), and refusal to destroy what other objects still point at.
import { classes, NULL_REF, type ClassModel } from '../datamodel/model.js';
import type { ApiRecord, ObjectStore } from './store.js';
import { fail } from '../core/errors.js';

/** Refs in a constructor record must name existing objects (or be NULL). */
function checkRefs(store: ObjectStore, c: ClassModel, rec: ApiRecord): void {
  for (const [name, v] of Object.entries(rec)) {
    const f = c.fields.get(name)!;
    if (f.type.kind !== 'ref' || v === NULL_REF) continue;
    const target = classes.get(f.type.cls);
    if (target?.stored && !store.exists(f.type.cls, v as string)) fail('HANDLE_INVALID', f.type.cls, v);
  }
}

/** The metrics record a class carries (VM.metrics, host.metrics, PIF.metrics…), if any. */
function metricsClass(c: ClassModel): string | undefined {
  const f = c.fields.get('metrics');
  return f && !f.removed && f.type.kind === 'ref' && classes.get(f.type.cls)?.stored ? f.type.cls : undefined;
}

export function createObject(objects: ObjectStore, cls: string, args: ApiRecord): string {
  const c = classes.get(cls)!;
  const rec: ApiRecord = {};
  for (const f of c.storedFields) {
    const settable = f.qualifier === 'RW' || f.qualifier === 'RO/constructor';
    if (settable && f.name in args) rec[f.name] = args[f.name];
    else if (f.required && settable) fail('FIELD_TYPE_ERROR', f.name);
  }
  checkRefs(objects, c, rec);
  const store = objects.any;
  return store.tx(() => {
    const metrics = metricsClass(c);
    if (metrics) rec.metrics = store.create(metrics, {});
    return store.create(cls, rec);
  });
}

export function destroyObject(objects: ObjectStore, cls: string, ref: string): void {
  const store = objects.any;
  const c = classes.get(cls)!;
  store.tx(() => {
    const users = store.referrers(cls, ref);
    const first = users[0];
    if (first) {
      if (cls === 'network' && first.field.name === 'VIFs') fail('NETWORK_CONTAINS_VIF', first.refs.join(','));
      if (cls === 'network' && first.field.name === 'PIFs') fail('NETWORK_CONTAINS_PIF', first.refs.join(','));
      if (cls === 'VDI' && first.field.name === 'VBDs') fail('VDI_IN_USE', ref, 'destroy');
      fail('OPERATION_NOT_ALLOWED', `${cls} ${ref} is still referenced by ${first.field.computedFrom!.one.cls} ${first.refs.join(', ')}`);
    }
    const metrics = metricsClass(c);
    const owned = metrics ? (store.field(cls, ref, 'metrics') as string) : NULL_REF;
    store.destroy(cls, ref);
    if (owned !== NULL_REF && store.exists(metrics!, owned)) store.destroy(metrics!, owned);
  });
}
