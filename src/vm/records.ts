// The database side of a domain starting and stopping: power state, domid, resident_on,
// consoles, which VBDs and VIFs count as attached, and VM_metrics; and, when a domain is
// gone, the storage and network backends it used let go of. Every path that starts or
// stops a domain (operations, guest-initiated changes, reconciliation) comes here.
import type { DomainInfo } from '../../drivers/driver.js';
import { now } from '../core/datetime.js';
import { updateAllowedOperations } from '../core/operations.js';
import { NULL_REF } from '../datamodel/model.js';
import { vifBackendName } from '../network/names.js';
import { memoryOf, memoryOverhead } from './config.js';
import type { VmMetrics } from './metrics.js';
import type { Power, VmState } from './state.js';
import { markVbdAttached } from './storage.js';

/** What a stopped domain used, for release(): its attached VBDs, and its VIFs with their
 * backend names. */
export interface Leftovers {
  vbds: string[];
  vifs: Array<[string, string]>;
}

export class VmRecords {
  constructor(private readonly s: VmState, private readonly metrics: VmMetrics) {}

  setPower(vm: string, power: Power, dom: DomainInfo): void {
    const store = this.s.store;
    store.tx(() => {
      store.update('VM', vm, { power_state: power, domid: dom.domid });
      this.metrics.update(vm, dom);
      updateAllowedOperations(store, 'VM', vm);
    });
  }

  /** The record changes of a VM whose domain now runs (or is paused) here. */
  started(vm: string, dom: DomainInfo, power: Power, o: { fresh: boolean; devices: Map<string, string> }): void {
    const { store, hostRef } = this.s;
    const rec = this.s.vm(vm);
    store.tx(() => {
      store.update('VM', vm, {
        domid: dom.domid,
        domarch: dom.hvm ? 'hvm' : 'x64',
        resident_on: hostRef,
        scheduled_to_be_resident_on: NULL_REF,
        power_state: power,
        memory_target: memoryOf(rec).target,
        memory_overhead: memoryOverhead(rec),
      });
      this.metrics.update(vm, dom, o.fresh);
      if (o.fresh && rec.guest_metrics !== NULL_REF) {
        if (store.exists('VM_guest_metrics', rec.guest_metrics)) store.destroy('VM_guest_metrics', rec.guest_metrics);
        store.update('VM', vm, { guest_metrics: NULL_REF });
      }
      if (rec.consoles.length === 0) {
        const address = store.field('host', hostRef, 'address') ?? '127.0.0.1';
        store.create('console', { protocol: 'rfb', location: `https://${address}/console?ref=${vm}`, VM: vm, other_config: {} });
      }
      for (const [ref] of this.s.vbds(rec)) markVbdAttached(store, ref, true, o.devices.get(ref));
      for (const [ref] of this.s.vifs(rec)) {
        if (!this.s.usesHostNetworking()) store.update('VIF', ref, { currently_attached: true });
      }
      updateAllowedOperations(store, 'VM', vm);
    });
    // The guest's agent may have reported before the VM record knew the domain.
    void this.metrics.refreshGuest(vm, dom.domid).catch(() => undefined);
  }

  /** The record changes of a VM whose domain is gone (Halted, or Suspended with its image). */
  stopped(vm: string, power: 'Halted' | 'Suspended', suspendVdi = NULL_REF): Leftovers {
    const store = this.s.store;
    const rec = this.s.vm(vm);
    const attachedVbds = this.s.vbds(rec).filter(([, b]) => b.currently_attached && !b.empty).map(([r]) => r);
    const attachedVifs = this.s.vifs(rec).filter(([, v]) => v.currently_attached).map(([r, v]) => [r, vifBackendName(rec.domid, v.device)] as [string, string]);
    store.tx(() => {
      store.update('VM', vm, {
        power_state: power, domid: -1, resident_on: NULL_REF, scheduled_to_be_resident_on: NULL_REF,
        ...(power === 'Suspended' ? { suspend_VDI: suspendVdi } : {}),
      });
      for (const c of rec.consoles) if (store.exists('console', c)) store.destroy('console', c);
      for (const [ref] of this.s.vbds(rec)) markVbdAttached(store, ref, false);
      for (const [ref] of this.s.vifs(rec)) store.update('VIF', ref, { currently_attached: false });
      const m = rec.metrics;
      if (m !== NULL_REF && store.exists('VM_metrics', m)) store.update('VM_metrics', m, { state: [], VCPUs_CPU: {}, last_updated: now() });
      updateAllowedOperations(store, 'VM', vm);
    });
    return { vbds: attachedVbds, vifs: attachedVifs };
  }

  /** Lets go of the storage and network backends a stopped domain used. */
  async release(what: Leftovers): Promise<void> {
    const { storage, store, network, log } = this.s;
    for (const vbd of what.vbds) {
      await storage.detachDisk(vbd).catch((err: Error) => log.warn({ vbd, err: err.message }, 'could not detach a disk'));
    }
    if (this.s.usesHostNetworking()) {
      for (const [vif, ifname] of what.vifs) {
        if (store.exists('VIF', vif)) await network.detachVif(vif, ifname).catch((err: Error) => log.warn({ vif, err: err.message }, 'could not release a VIF'));
      }
    }
  }

  async halted(vm: string): Promise<void> {
    await this.release(this.stopped(vm, 'Halted'));
  }

  async destroyAndHalt(vm: string, domid: number): Promise<void> {
    await this.s.destroyDomain(vm, domid, 'hard_shutdown');
    await this.halted(vm);
  }
}
