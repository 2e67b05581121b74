// Making a VM's domain: the host checks, the build (disks, domain, xenstore, network
// backends), and the operations that boot: VM.start and start_on, VM.resume and
// resume_on, and the rebuild behind a reboot. Also VM.last_booted_record, which start
// writes and get_boot_record reads.
import type { DomainInfo, HostFacts } from '../../drivers/driver.js';
import type { CallContext } from '../core/context.js';
import { fail } from '../core/errors.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import { vifBackendName } from '../network/names.js';
import { buildDomainConfig, memoryOf, memoryOverhead, validateForStart, type DiskSource } from './config.js';
import { withVmError, type VmOp } from './errors.js';
import type { VmRecords } from './records.js';
import type { VmState } from './state.js';

export interface Built {
  dom: DomainInfo;
  /** Guest device name per VBD. */
  devices: Map<string, string>;
}

export class VmBoot {
  constructor(private readonly s: VmState, private readonly records: VmRecords) {}

  /** Host checks before a start or resume: host, memory, CPUs, SRs. */
  async assertCanBootHere(vm: string, host: string, facts?: HostFacts): Promise<void> {
    const store = this.s.store;
    const h = store.get('host', host);
    if (!h) fail('HANDLE_INVALID', 'host', host);
    if (host !== this.s.hostRef) fail('HOST_NOT_LIVE');
    if (!h.enabled) fail('HOST_DISABLED', host);
    const rec = this.s.vm(vm);
    const mem = memoryOf(rec);
    const f = facts ?? (await this.s.driver.host());
    if (rec.VCPUs_max > f.cpus) fail('HOST_NOT_ENOUGH_PCPUS', rec.VCPUs_max, f.cpus);
    const needed = mem.target + memoryOverhead(rec);
    const available = Math.max(0, f.freeMemoryBytes - this.s.reserved);
    if (needed > available) fail('HOST_NOT_ENOUGH_FREE_MEMORY', needed, available);
    for (const [, b] of this.s.vbds(rec)) {
      if (b.empty || b.VDI === NULL_REF || !store.exists('VDI', b.VDI)) continue;
      const sr = store.field('VDI', b.VDI, 'SR')!;
      const pbd = (store.field('SR', sr, 'PBDs') ?? []).find((p) => store.field('PBD', p, 'host') === host);
      if (!pbd || !store.field('PBD', pbd, 'currently_attached')) fail('VM_REQUIRES_SR', vm, sr);
    }
  }

  /** Attaches the disks, creates (or restores) the domain paused, writes xenstore_data and
   * the network backends, then unpauses unless asked not to. Undoes everything on failure. */
  async build(vm: string, paused: boolean, op: VmOp, restoreFrom?: string): Promise<Built> {
    const { store, driver, storage } = this.s;
    const rec = this.s.vm(vm);
    return withVmError(vm, op, async () => {
      const attached: string[] = [];
      const disks = new Map<string, DiskSource>();
      let dom: DomainInfo | undefined;
      try {
        for (const [ref, b] of this.s.vbds(rec)) {
          if (b.empty || b.VDI === NULL_REF) continue;
          const src = await storage.attachDisk(ref);
          attached.push(ref);
          if (src) disks.set(ref, src);
        }
        const bridges = new Map<string, string>();
        for (const [, v] of this.s.vifs(rec)) {
          const bridge = store.field('network', v.network, 'bridge');
          if (bridge === undefined) fail('HANDLE_INVALID', 'network', v.network);
          if (!bridge && driver.name === 'xl') fail('VM_REQUIRES_NETWORK', vm, v.network);
          bridges.set(v.network, bridge);
        }
        const cfg = buildDomainConfig({ vm: rec, vbds: this.s.vbds(rec), vifs: this.s.vifs(rec), bridges, disks });
        dom = restoreFrom ? await driver.restore(restoreFrom, cfg, { paused: true }) : await driver.create(cfg, { paused: true });
        for (const [k, v] of Object.entries(rec.xenstore_data)) await driver.xenstoreWrite(`/local/domain/${dom.domid}/${k}`, v);
        if (this.s.usesHostNetworking()) {
          for (const [ref, v] of this.s.vifs(rec)) await this.s.network.attachVif(ref, vifBackendName(dom.domid, v.device));
        }
        if (!paused) {
          await driver.unpause(dom.domid);
          dom = { ...dom, state: 'running' };
        }
        const devices = new Map(cfg.disks.map((d) => [d.vbd, d.vdev]));
        return { dom, devices };
      } catch (e) {
        if (dom) await driver.destroy(dom.domid).catch(() => undefined);
        for (const ref of attached) await storage.detachDisk(ref).catch(() => undefined);
        throw e;
      }
    });
  }

  /** Destroys the current domain and builds a new one (reboot, restart). */
  async reboot(vm: string, domid: number): Promise<void> {
    await this.s.destroyDomain(vm, domid, 'hard_reboot');
    const rec = this.s.vm(vm);
    // The disks are let go of and taken again, as a fresh boot does.
    for (const [ref, b] of this.s.vbds(rec)) if (b.currently_attached && !b.empty) await this.s.storage.detachDisk(ref).catch(() => undefined);
    this.s.store.update('VM', vm, { domid: -1 });
    validateForStart(vm, rec, true);
    const { dom, devices } = await this.build(vm, false, 'hard_reboot');
    this.records.started(vm, dom, 'Running', { fresh: true, devices });
  }

  // ---- the operations ------------------------------------------------------------------

  async start(ctx: CallContext, vm: string, paused: boolean, _force: boolean, op: 'start' | 'start_on' = 'start', host = this.s.hostRef): Promise<void> {
    await this.s.withOp(ctx, vm, op, async () => {
      const rec = this.s.vm(vm);
      validateForStart(vm, rec);
      this.assertThisHost(host, 'start');
      const facts = await this.s.driver.host();
      await this.assertCanBootHere(vm, host, facts);
      await this.reserving(vm, rec, async () => {
        // The record as it boots, without its own previous boot record (which would nest without end).
        this.s.store.update('VM', vm, { last_booted_record: this.s.opts.records.encode('VM', { ...rec, last_booted_record: '' }), scheduled_to_be_resident_on: host });
        const { dom, devices } = await this.build(vm, paused, 'start');
        this.records.started(vm, dom, paused ? 'Paused' : 'Running', { fresh: true, devices });
      });
    });
  }

  async resume(ctx: CallContext, vm: string, paused: boolean, _force: boolean, op: 'resume' | 'resume_on' = 'resume', host = this.s.hostRef): Promise<void> {
    const { store, storage } = this.s;
    await this.s.withOp(ctx, vm, op, async () => {
      const rec = this.s.vm(vm);
      if (rec.suspend_VDI === NULL_REF || !store.exists('VDI', rec.suspend_VDI)) fail('VM_HAS_NO_SUSPEND_VDI', vm);
      this.assertThisHost(host, 'resume');
      memoryOf(rec);
      await this.assertCanBootHere(vm, host);
      const vdi = rec.suspend_VDI;
      await this.reserving(vm, rec, async () => {
        store.update('VM', vm, { scheduled_to_be_resident_on: host });
        const { dom, devices } = await storage.withImage(vdi, false, (file) => this.build(vm, paused, 'resume', file));
        store.update('VM', vm, { suspend_VDI: NULL_REF });
        this.records.started(vm, dom, paused ? 'Paused' : 'Running', { fresh: false, devices });
      });
      await storage.destroyVdi(ctx, vdi).catch((err: Error) => this.s.log.warn({ vm, vdi, err: err.message }, 'could not remove the suspend image after resume'));
    });
  }

  /** The record the VM last booted with (as stored at start), or the current one. */
  async bootRecord(vm: string): Promise<VMRecord> {
    const rec = this.s.vm(vm);
    if (!rec.last_booted_record) return rec;
    const booted = await this.s.opts.records.decode('VM', rec.last_booted_record);
    return booted ? ({ ...rec, ...booted } as VMRecord) : rec;
  }

  /** Another known host is refused: there are no pools yet. (An unknown ref fails in assertCanBootHere.) */
  private assertThisHost(host: string, verb: 'start' | 'resume'): void {
    if (host !== this.s.hostRef && this.s.store.exists('host', host)) {
      fail('OPERATION_NOT_ALLOWED', `host ${host} is not this host; VMs ${verb} only on the host they are asked on while pools are not supported`);
    }
  }

  /** Runs a boot with the VM's memory promised to it, so that starts in parallel do not
   * count the same free memory; a failed boot leaves the VM scheduled nowhere. */
  private async reserving(vm: string, rec: VMRecord, boot: () => Promise<void>): Promise<void> {
    const needed = memoryOf(rec).target + memoryOverhead(rec);
    this.s.reserved += needed;
    try {
      await boot();
    } catch (e) {
      if (this.s.store.exists('VM', vm)) this.s.store.update('VM', vm, { scheduled_to_be_resident_on: NULL_REF });
      throw e;
    } finally {
      this.s.reserved -= needed;
    }
  }
}
