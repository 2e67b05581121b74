// What the VM state machine needs from the storage layer (src/storage/): its disks
// attached while a domain runs, VDIs made, cloned, copied and destroyed for clone,
// copy and provision, and VDIs holding suspend images and crash dumps.
//
// A suspend image or core dump is written straight into its VDI when the SR's plugin
// attaches it as a raw file or device. A plugin that hands out another format (the
// file SR's qcow2) cannot take a raw stream, so the image then lives in the daemon's
// state directory under the VDI's uuid, and the VDI keeps the space accounted for.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { INTERNAL, type CallContext } from '../core/context.js';
import { fail } from '../core/errors.js';
import { classes, NULL_REF } from '../datamodel/model.js';
import type { VBDRecord, VDIRecord } from '../datamodel/records.js';
import { attachVbdDisk, detachVbdDisk, markVbdAttached } from '../storage/attach.js';
import type { StorageService } from '../storage/service.js';
import { createVbd } from '../storage/vbd.js';
import { branchVdi, copyVdi, createVdi, destroyVdi } from '../storage/vdiops.js';
import type { DiskSource } from './config.js';

export { markVbdAttached };

/** Defaults for the VDI constructor's required fields. */
function vdiArgs(a: Partial<VDIRecord> & Pick<VDIRecord, 'SR' | 'virtual_size' | 'type'>): Partial<VDIRecord> {
  const out: Record<string, unknown> = {};
  for (const f of classes.get('VDI')!.storedFields) {
    if ((f.qualifier === 'RW' || f.qualifier === 'RO/constructor') && f.required) out[f.name] = structuredClone(f.initial);
  }
  return { ...(out as Partial<VDIRecord>), sharable: false, read_only: false, ...a };
}

export class VmStorage {
  constructor(private readonly svc: StorageService, private readonly stateDir: string) {}

  private ctx(ctx?: CallContext): CallContext {
    return ctx ?? INTERNAL;
  }

  // ---- disks of a running VM --------------------------------------------------------

  /** Makes the VBD's disk reachable here; undefined for an empty drive. */
  async attachDisk(vbd: string): Promise<DiskSource | undefined> {
    const a = await attachVbdDisk(this.svc, vbd);
    if (!a) return undefined;
    const format = (['raw', 'qcow2', 'vhd'] as const).find((f) => f === a.format);
    if (!format) fail('VDI_INCOMPATIBLE_TYPE', a.vdi, `image format ${a.format}`);
    return { path: a.path, format };
  }

  async detachDisk(vbd: string): Promise<void> {
    await detachVbdDisk(this.svc, vbd);
  }

  // ---- VDIs --------------------------------------------------------------------------

  createVdi(ctx: CallContext | undefined, a: Partial<VDIRecord> & Pick<VDIRecord, 'SR' | 'virtual_size' | 'type'>): Promise<string> {
    return createVdi(this.svc, this.ctx(ctx), vdiArgs(a));
  }

  cloneVdi(ctx: CallContext | undefined, vdi: string): Promise<string> {
    return branchVdi(this.svc, this.ctx(ctx), vdi, 'clone', {});
  }

  copyVdi(ctx: CallContext | undefined, vdi: string, sr: string): Promise<string> {
    return copyVdi(this.svc, this.ctx(ctx), vdi, sr, NULL_REF, NULL_REF);
  }

  async destroyVdi(ctx: CallContext | undefined, vdi: string): Promise<void> {
    if (!this.svc.store.exists('VDI', vdi)) return;
    rmSync(this.fallbackFile(vdi), { force: true });
    await destroyVdi(this.svc, this.ctx(ctx), vdi);
  }

  /** A VBD for a new VM's disk or drive (clone, copy, provision), with VBD.create's checks. */
  createVbd(args: Partial<VBDRecord>): string {
    return createVbd(this.svc, args);
  }

  // ---- images (suspend, crash dumps) ---------------------------------------------------

  private fallbackFile(vdi: string): string {
    const uuid = this.svc.store.field('VDI', vdi, 'uuid') ?? vdi;
    return path.join(this.stateDir, 'vm-images', uuid);
  }

  /** Runs fn with a path where the VDI's image is read or written, then lets go of it. */
  async withImage<T>(vdi: string, writable: boolean, fn: (file: string) => Promise<T>): Promise<T> {
    const svc = this.svc;
    const sr = this.svc.store.field('VDI', vdi, 'SR');
    if (!sr || sr === NULL_REF) fail('HANDLE_INVALID', 'VDI', vdi);
    const r = await svc.call(sr, 'vdi_attach', { vdi, args: { writable }, op: 'attach' });
    try {
      if (r.format === 'raw' && typeof r.path === 'string' && r.path) return await fn(r.path);
      mkdirSync(path.dirname(this.fallbackFile(vdi)), { recursive: true, mode: 0o700 });
      return await fn(this.fallbackFile(vdi));
    } finally {
      await svc.call(sr, 'vdi_detach', { vdi, op: 'detach' }).catch((e: Error) => this.svc.log.warn({ vdi, err: e.message }, 'could not detach an image VDI'));
    }
  }
}
