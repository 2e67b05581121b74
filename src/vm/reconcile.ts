// Database and hypervisor brought in line when the daemon starts: operations the previous
// daemon left unfinished are cleared (and a domain whose build they interrupted removed),
// each VM's record follows the domain it has or has not, and domains that belong to no
// VM are reported and left alone.
import { updateAllowedOperations } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VmDomainEvents } from './domain-events.js';
import type { VmState } from './state.js';
import { markVbdAttached } from './storage.js';

const BUILDING_OPS = new Set(['start', 'start_on', 'resume', 'resume_on', 'hard_reboot', 'clean_reboot']);

export async function reconcile(s: VmState, events: VmDomainEvents): Promise<void> {
  const { store, log, driver } = s;
  const domains = await driver.list();
  const byUuid = new Map(domains.map((d) => [d.uuid, d]));
  for (const [vm, rec] of store.allRecords('VM')) {
    if (rec.is_control_domain) continue;
    const dom = byUuid.get(rec.uuid as string);
    byUuid.delete(rec.uuid as string);
    const ops = s.interrupted.get(vm) ?? [];
    if (ops.length) log.warn({ vm, ops }, 'operations interrupted by the previous daemon are cleared');
    let d = dom;
    if (d && d.state === 'paused' && rec.power_state !== 'Paused' && ops.some((o) => BUILDING_OPS.has(o))) {
      log.warn({ vm, domid: d.domid }, 'removing a domain whose build was interrupted');
      await driver.destroy(d.domid).catch(() => undefined);
      d = undefined;
    }
    if (ops.length) {
      store.update('VM', vm, { current_operations: {}, scheduled_to_be_resident_on: NULL_REF });
    }
    if (d || rec.power_state === 'Running' || rec.power_state === 'Paused') await events.sync(vm, d);
    if (!d && rec.power_state === 'Halted') detachLeftovers(s, vm);
    updateAllowedOperations(store, 'VM', vm);
  }
  for (const d of byUuid.values()) log.warn({ domid: d.domid, uuid: d.uuid, name: d.name }, 'a domain that belongs to no VM: left alone');
  s.interrupted.clear();
}

/** A halted VM's devices are not attached to anything. */
function detachLeftovers(s: VmState, vm: string): void {
  const rec = s.vm(vm);
  s.store.tx(() => {
    for (const [ref, b] of s.vbds(rec)) if (b.currently_attached) markVbdAttached(s.store, ref, false);
    for (const [ref, v] of s.vifs(rec)) if (v.currently_attached) s.store.update('VIF', ref, { currently_attached: false });
  });
}
