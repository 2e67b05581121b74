// VM.clone, VM.copy and VM.provision: new VMs and disks from existing ones, and the
// disks a template's other_config `disks` spec asks for. Disks go through the storage
// layer (VDI clone, copy, create); what was made is removed again when a step fails.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { CallContext, TaskHandle } from '../core/context.js';
import { fail } from '../core/errors.js';
import { updateAllowedOperations } from '../core/operations.js';
import { createVif } from '../network/ops.js';
import { NULL_REF, classes, enums } from '../datamodel/model.js';
import type { VDIRecord, VMRecord } from '../datamodel/records.js';
import { now } from '../core/datetime.js';
import type { VmState } from './state.js';

/** Fields a new VM does not take from the one it is made from. */
const NOT_COPIED = new Set([
  'uuid', 'allowed_operations', 'current_operations', 'resident_on', 'scheduled_to_be_resident_on', 'domid', 'domarch',
  'metrics', 'guest_metrics', 'is_control_domain', 'suspend_VDI', 'power_state', 'name_label', 'other_config',
]);

/** Progress of one step out of n, reported as a share of the whole task. */
function stepTask(task: TaskHandle | undefined, i: number, n: number): TaskHandle | undefined {
  if (!task) return undefined;
  return { ...task, setProgress: (p: number) => task.setProgress((i + Math.max(0, Math.min(1, p))) / n) };
}

interface Made {
  vdis: string[];
  vbds: string[];
  vifs: string[];
  vm?: string;
}

async function undo(svc: VmState, ctx: CallContext, made: Made): Promise<void> {
  const store = svc.store;
  for (const vif of made.vifs) if (store.exists('VIF', vif)) store.destroy('VIF', vif);
  for (const vbd of made.vbds) if (store.exists('VBD', vbd)) store.destroy('VBD', vbd);
  if (made.vm && store.exists('VM', made.vm)) {
    const m = store.field('VM', made.vm, 'metrics')!;
    store.destroy('VM', made.vm);
    if (m !== NULL_REF && store.exists('VM_metrics', m)) store.destroy('VM_metrics', m);
  }
  for (const vdi of made.vdis) await svc.storage.destroyVdi(ctx, vdi).catch(() => undefined);
}

/** VM.clone (disks cloned in their SRs) and VM.copy (disks copied into `sr`, or each into its own SR when sr is NULL). */
export function cloneVm(svc: VmState, ctx: CallContext, vm: string, newName: string, copyTo?: string): Promise<string> {
  const op = copyTo === undefined ? 'clone' : 'copy';
  return svc.withOp(ctx, vm, op, async () => {
    const store = svc.store;
    const src = store.get('VM', vm)!;
    if (copyTo !== undefined && copyTo !== NULL_REF && store.field('SR', copyTo, 'content_type') === 'iso') {
      fail('OPERATION_NOT_ALLOWED', "Cannot copy a VM's disks to an ISO SR");
    }
    const vbds = src.VBDs.map((r) => [r, store.get('VBD', r)!] as const);
    const disks = vbds.filter(([, b]) => !b.empty && b.type !== 'CD' && b.VDI !== NULL_REF);
    const steps = disks.length + (src.power_state === 'Suspended' ? 1 : 0) + 1;
    const made: Made = { vdis: [], vbds: [], vifs: [] };
    const newDisk = async (vdi: string, i: number) => {
      const c = { ...ctx, task: stepTask(ctx.task, i, steps) };
      const sr = copyTo !== undefined && copyTo !== NULL_REF ? copyTo : store.field('VDI', vdi, 'SR')!;
      const ref = op === 'clone' ? await svc.storage.cloneVdi(c, vdi) : await svc.storage.copyVdi(c, vdi, sr);
      made.vdis.push(ref);
      ctx.task?.setProgress((i + 1) / steps);
      return ref;
    };
    try {
      const diskMap = new Map<string, string>();
      for (const [i, [ref, b]] of disks.entries()) {
        ctx.task?.checkCancelled();
        diskMap.set(ref, await newDisk(b.VDI, i));
      }
      let suspendVdi = NULL_REF;
      if (src.power_state === 'Suspended' && src.suspend_VDI !== NULL_REF) suspendVdi = await newDisk(src.suspend_VDI, disks.length);
      ctx.task?.checkCancelled();

      const other: Record<string, string> = { ...src.other_config, mac_seed: randomUUID() };
      delete other.default_template;
      delete other.xensource_internal;
      const rec: Record<string, unknown> = {};
      for (const f of classes.get('VM')!.storedFields) if (!NOT_COPIED.has(f.name)) rec[f.name] = structuredClone((src as unknown as Record<string, unknown>)[f.name]);
      Object.assign(rec, {
        name_label: newName, other_config: other, power_state: src.power_state === 'Suspended' ? 'Suspended' : 'Halted',
        suspend_VDI: suspendVdi, domid: -1, domarch: '', resident_on: NULL_REF, scheduled_to_be_resident_on: NULL_REF,
        is_control_domain: false, guest_metrics: NULL_REF, current_operations: {}, allowed_operations: [],
      });
      made.vm = store.tx(() => {
        rec.metrics = store.create('VM_metrics', { last_updated: now() });
        return store.create('VM', rec as Partial<VMRecord>);
      });
      const newVm = made.vm;
      for (const [ref, b] of vbds) {
        const vdi = b.empty || b.VDI === NULL_REF ? NULL_REF : b.type === 'CD' ? b.VDI : diskMap.get(ref)!;
        const vbd = svc.storage.createVbd({
          VM: newVm, VDI: vdi, userdevice: b.userdevice, bootable: b.bootable, mode: b.mode, type: b.type,
          unpluggable: b.unpluggable, empty: b.empty, other_config: { ...b.other_config },
          qos_algorithm_type: b.qos_algorithm_type, qos_algorithm_params: { ...b.qos_algorithm_params },
        });
        made.vbds.push(vbd);
      }
      for (const r of src.VIFs) {
        const v = store.get('VIF', r)!;
        made.vifs.push(createVif(store, {
          VM: newVm, network: v.network, device: v.device, MAC: '', MTU: v.MTU, other_config: { ...v.other_config },
          qos_algorithm_type: v.qos_algorithm_type, qos_algorithm_params: { ...v.qos_algorithm_params },
        }));
      }
      updateAllowedOperations(store, 'VM', newVm);
      ctx.task?.setProgress(1);
      return newVm;
    } catch (e) {
      await undo(svc, ctx, made);
      throw e;
    }
  });
}

export interface ProvisionDisk {
  device: string;
  size: number;
  sr: string;
  bootable: boolean;
  type: VDIRecord['type'];
}

const VDI_TYPES = new Set(enums.vdi_type ?? []);

const unescapeAttr = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Reads `<provision><disk device="0" size="…" sr="…" bootable="true" type="system"/>…</provision>`. */
export function parseProvisionXml(xml: string): ProvisionDisk[] {
  const t = xml.trim();
  if (!t) return [];
  if (!/^<provision\b[^>]*>[\s\S]*<\/provision>$|^<provision\b[^>]*\/>$/.test(t)) fail('INVALID_VALUE', 'other_config:disks', xml);
  const out: ProvisionDisk[] = [];
  for (const m of t.matchAll(/<disk\b([^>]*?)\/?>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]!] = unescapeAttr(a[2] ?? a[3] ?? '');
    const size = attrs.size ?? '';
    if (!/^\d+$/.test(size) || Number(size) <= 0) fail('INVALID_VALUE', 'disk size', size);
    if (attrs.device === undefined || !/^\d+$/.test(attrs.device)) fail('INVALID_VALUE', 'disk device', attrs.device ?? '');
    const type = (attrs.type ?? 'system') as VDIRecord['type'];
    if (!VDI_TYPES.has(type)) fail('INVALID_VALUE', 'disk type', type);
    out.push({ device: attrs.device, size: Number(size), sr: attrs.sr ?? '', bootable: attrs.bootable === 'true', type });
  }
  return out;
}

function runPostinstall(script: string, vmUuid: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(script, [vmUuid], { timeout: 300_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`${path.basename(script)}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** VM.provision: the template's disks made, the template turned into a VM. */
export function provisionVm(svc: VmState, ctx: CallContext, vm: string): Promise<void> {
  return svc.withOp(ctx, vm, 'provision', async () => {
    const store = svc.store;
    const rec = store.get('VM', vm)!;
    const disks = parseProvisionXml(rec.other_config.disks ?? '');
    const srs = disks.map((d) => {
      const sr = store.refByUuid('SR', d.sr);
      if (!sr) fail('UUID_INVALID', 'sr', d.sr);
      return sr;
    });
    const postinstall = rec.other_config.postinstall;
    const script = postinstall ? path.join(svc.opts.stateDir, 'post-install-scripts', path.basename(postinstall)) : undefined;
    if (script && !existsSync(script)) fail('OPERATION_NOT_ALLOWED', `the post-install script ${path.basename(postinstall!)} is not installed in ${path.dirname(script)}`);
    const made: Made = { vdis: [], vbds: [], vifs: [] };
    try {
      for (const [i, d] of disks.entries()) {
        ctx.task?.checkCancelled();
        const vdi = await svc.storage.createVdi({ ...ctx, task: stepTask(ctx.task, i, disks.length + 1) }, {
          SR: srs[i]!, virtual_size: d.size, type: d.type, name_label: '', name_description: 'Created by template provisioner',
          sharable: false, read_only: false, sm_config: { vmhint: rec.uuid },
        });
        made.vdis.push(vdi);
        made.vbds.push(svc.storage.createVbd({
          VM: vm, VDI: vdi, userdevice: d.device, bootable: d.bootable, mode: 'RW', type: 'Disk',
          unpluggable: d.type !== 'system', empty: false, other_config: { owner: '' }, qos_algorithm_type: '', qos_algorithm_params: {},
        }));
        store.update('VDI', vdi, { name_label: d.device });
        ctx.task?.setProgress((i + 1) / (disks.length + 1));
      }
      if (script) await runPostinstall(script, rec.uuid).catch((e: Error) => fail('INTERNAL_ERROR', `post-install script failed: ${e.message}`));
    } catch (e) {
      for (const vbd of made.vbds) if (store.exists('VBD', vbd)) store.destroy('VBD', vbd);
      for (const vdi of made.vdis) await svc.storage.destroyVdi(ctx, vdi).catch(() => undefined);
      throw e;
    }
    store.tx(() => {
      const other = { ...store.field('VM', vm, 'other_config')! };
      delete other.disks;
      delete other.postinstall;
      store.update('VM', vm, { is_a_template: false, other_config: other });
      const m = store.field('VM', vm, 'metrics')!;
      if (m !== NULL_REF && store.exists('VM_metrics', m)) store.update('VM_metrics', m, { install_time: now() });
      updateAllowedOperations(store, 'VM', vm);
    });
  });
}
