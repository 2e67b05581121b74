// From VM records to a driver's DomainConfig: the start-time validation of memory,
// VCPUs and boot settings (xapi checks these only at start), memory clamping and
// overhead, device names, and the boot rules of the API manual's section 1.7.
import type { DiskSpec, DomainConfig, NicSpec, SimulatorHints } from '../../drivers/driver.js';
import type { VBDRecord, VIFRecord, VMRecord } from '../datamodel/records.js';
import { fail } from '../core/errors.js';

const MiB = 1024 * 1024;

export const isHvm = (vm: Pick<VMRecord, 'HVM_boot_policy'>) => vm.HVM_boot_policy !== '';

export interface Memory {
  staticMax: number;
  staticMin: number;
  dynamicMax: number;
  dynamicMin: number;
  /** What the domain is built with. */
  target: number;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Checks the ordering xapi insists on and clamps the dynamic range into the static one.
 * Without a balloon driver manager, a domain is given its dynamic maximum. */
export function memoryOf(vm: VMRecord): Memory {
  if (vm.memory_static_max < vm.memory_static_min) fail('MEMORY_CONSTRAINT_VIOLATION', 'memory_static_min <= memory_static_max');
  if (vm.memory_dynamic_max < vm.memory_dynamic_min) fail('MEMORY_CONSTRAINT_VIOLATION', 'memory_dynamic_min <= memory_dynamic_max');
  if (vm.memory_static_max <= 0) fail('MEMORY_CONSTRAINT_VIOLATION', 'memory_static_max > 0');
  const dynamicMax = clamp(vm.memory_dynamic_max, vm.memory_static_min, vm.memory_static_max);
  const dynamicMin = clamp(vm.memory_dynamic_min, vm.memory_static_min, vm.memory_static_max);
  return { staticMax: vm.memory_static_max, staticMin: vm.memory_static_min, dynamicMax, dynamicMin, target: dynamicMax };
}

/** HVM shadow memory in MiB, as libxl estimates it, scaled by the VM's multiplier. */
export function shadowMiB(vm: VMRecord): number {
  if (!isHvm(vm)) return 0;
  const kib = 4 * (256 * Math.max(1, vm.VCPUs_max) + 2 * Math.ceil(vm.memory_static_max / MiB));
  return Math.ceil((kib / 1024) * Math.max(1, vm.HVM_shadow_multiplier || 1));
}

/** Memory a domain costs beyond its RAM: page tables and per-VCPU state (an estimate), plus shadow. */
export function memoryOverhead(vm: VMRecord): number {
  const base = Math.ceil(vm.memory_static_max / 128) + Math.max(1, vm.VCPUs_max) * MiB;
  return Math.ceil((base + shadowMiB(vm) * MiB) / MiB) * MiB;
}

/** VCPU counts as xapi checks them at start. */
export function checkVcpus(vm: VMRecord): void {
  if (vm.VCPUs_max < 1) fail('INVALID_VALUE', 'VCPUs_max', vm.VCPUs_max);
  if (vm.VCPUs_at_startup < 1) fail('INVALID_VALUE', 'VCPUs-at-startup', vm.VCPUs_at_startup);
  if (vm.VCPUs_at_startup > vm.VCPUs_max) fail('VALUE_NOT_SUPPORTED', 'VCPUs-at-startup', vm.VCPUs_at_startup, 'value greater than VCPUs-max');
}

/** Everything a start refuses before touching the hypervisor. A restart of a running VM
 * (reboot, or an action after a crash) does not look at actions_after_crash again. */
export function validateForStart(vmRef: string, vm: VMRecord, restart = false): Memory {
  const mem = memoryOf(vm);
  checkVcpus(vm);
  if (!restart && vm.actions_after_crash === 'rename_restart') {
    fail('VALUE_NOT_SUPPORTED', 'VM.actions_after_crash', 'rename_restart', 'option would leak a domain; VMs and not domains are managed by this API');
  }
  if (isHvm(vm)) {
    if (!restart && vm.actions_after_crash.startsWith('coredump')) fail('VALUE_NOT_SUPPORTED', 'VM.actions_after_crash', vm.actions_after_crash, 'cannot invoke a coredump of an HVM domain');
    if (vm.HVM_boot_policy !== 'BIOS order') fail('VALUE_NOT_SUPPORTED', 'VM.HVM_boot_policy', vm.HVM_boot_policy, 'the only boot policy is "BIOS order"');
  } else {
    const bl = pvBootloader(vm);
    if (bl && bl !== 'pygrub' && !bl.startsWith('/')) fail('UNKNOWN_BOOTLOADER', vmRef, bl);
  }
  return mem;
}

/** The bootloader a PV guest uses: none for a direct kernel boot, pygrub when nothing is said. */
export function pvBootloader(vm: VMRecord): string {
  if (vm.PV_bootloader) return vm.PV_bootloader;
  return vm.PV_kernel ? '' : 'pygrub';
}

/** A userdevice ("0", "xvdb", "hdb", "sdb") as a device number. */
export function deviceNumber(userdevice: string): number | undefined {
  if (/^\d+$/.test(userdevice)) return Number(userdevice);
  const m = /^(?:xvd|hd|sd)([a-z]+)$/.exec(userdevice);
  if (!m) return undefined;
  let n = 0;
  for (const c of m[1]!) n = n * 26 + (c.charCodeAt(0) - 96);
  return n - 1;
}

function letters(n: number): string {
  let s = '';
  let x = n + 1;
  while (x > 0) {
    const r = (x - 1) % 26;
    s = String.fromCharCode(97 + r) + s;
    x = Math.floor((x - 1) / 26);
  }
  return s;
}

/** The guest's name for a disk: emulated IDE (hda–hdd) for an HVM guest's first four, xvd* otherwise. */
export function vdevName(userdevice: string, hvm: boolean): string {
  const n = deviceNumber(userdevice);
  if (n === undefined) return userdevice;
  return hvm && n < 4 ? `hd${letters(n)}` : `xvd${letters(n)}`;
}

const MAX_NAME = 64;

/** A domain name unique on the host and safe for xl: the label's safe characters and the uuid. */
export function domainName(vm: Pick<VMRecord, 'name_label' | 'uuid'>): string {
  const label = vm.name_label.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, MAX_NAME - 10);
  return `${label || 'vm'}-${vm.uuid.slice(0, 8)}`;
}

/** Test-only simulator behaviour from other_config (see drivers/README.md). */
export function simulatorHints(other: Record<string, string>): SimulatorHints | undefined {
  const h: SimulatorHints = {};
  if (other.sim_refuse_start) h.refuseStart = other.sim_refuse_start;
  if (other.sim_shutdown === 'ignore' || other.sim_shutdown === 'hang') h.shutdown = other.sim_shutdown;
  if (other.sim_build_ms && /^\d+$/.test(other.sim_build_ms)) h.buildMs = Number(other.sim_build_ms);
  if (other.sim_no_agent === 'true') h.noAgent = true;
  return Object.keys(h).length ? h : undefined;
}

function parseVcpusParams(p: Record<string, string>): { weight?: number; cap?: number; mask?: string } {
  const out: { weight?: number; cap?: number; mask?: string } = {};
  if (p.weight && /^\d+$/.test(p.weight)) out.weight = Number(p.weight);
  if (p.cap && /^\d+$/.test(p.cap)) out.cap = Number(p.cap);
  if (p.mask && /^[\d,\s-]+$/.test(p.mask)) out.mask = p.mask.replace(/\s+/g, '');
  return out;
}

export interface DiskSource {
  path: string;
  format: DiskSpec['format'];
}

export interface BuildInput {
  vm: VMRecord;
  vbds: Array<[string, VBDRecord]>;
  vifs: Array<[string, VIFRecord]>;
  /** network ref → bridge name */
  bridges: Map<string, string>;
  /** VBD ref → where its data is (absent for an empty drive) */
  disks: Map<string, DiskSource>;
}

export function diskSpecs(input: Pick<BuildInput, 'vm' | 'vbds' | 'disks'>): DiskSpec[] {
  const hvm = isHvm(input.vm);
  return input.vbds.map(([ref, b]) => {
    const src = input.disks.get(ref);
    const cdrom = b.type === 'CD';
    return {
      vdev: vdevName(b.userdevice, hvm),
      userdevice: b.userdevice,
      vbd: ref,
      path: b.empty || !src ? '' : src.path,
      format: b.empty || !src ? 'empty' : src.format,
      readonly: cdrom || b.mode === 'RO',
      cdrom,
      bootable: b.bootable,
    };
  });
}

export function nicSpecs(input: Pick<BuildInput, 'vifs' | 'bridges'>): NicSpec[] {
  return input.vifs.map(([ref, v]) => ({
    devid: Number.parseInt(v.device, 10) || 0,
    vif: ref,
    mac: v.MAC,
    bridge: input.bridges.get(v.network) ?? '',
    mtu: v.MTU || 1500,
  }));
}

export function buildDomainConfig(input: BuildInput): DomainConfig {
  const { vm } = input;
  const mem = memoryOf(vm);
  const hvm = isHvm(vm);
  const cfg: DomainConfig = {
    uuid: vm.uuid,
    name: domainName(vm),
    hvm,
    memory: { maxBytes: mem.staticMax, targetBytes: mem.target, shadowMiB: shadowMiB(vm) },
    vcpus: { max: vm.VCPUs_max, atStartup: vm.VCPUs_at_startup, ...parseVcpusParams(vm.VCPUs_params) },
    platform: { ...vm.platform },
    disks: diskSpecs(input),
    nics: nicSpecs(input),
    xenstoreData: { ...vm.xenstore_data },
    sim: simulatorHints(vm.other_config),
  };
  if (hvm) {
    cfg.hvmBoot = { order: vm.HVM_boot_params.order ?? 'cd' };
  } else {
    cfg.pv = {
      bootloader: pvBootloader(vm),
      bootloaderArgs: vm.PV_bootloader_args,
      kernel: vm.PV_kernel,
      ramdisk: vm.PV_ramdisk,
      args: [vm.PV_args, vm.PV_legacy_args].filter(Boolean).join(' '),
    };
  }
  return cfg;
}
