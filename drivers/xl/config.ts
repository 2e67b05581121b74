// The xl domain configuration file for a DomainConfig (xl.cfg(5) syntax).
//
// PV (the API manual's section 1.7): a bootloader (`pygrub`, or a path in dom0) is
// given the kernel, ramdisk and arguments as hints, and the bootable disks come first
// so that it looks at them; with no bootloader the kernel and ramdisk are dom0 paths
// booted directly. HVM: the "BIOS order" policy's `order` becomes `boot`.
// on_poweroff/on_reboot/on_crash are all "preserve": the domain stays, stopped, so that
// xapid (not xl) decides what happens next from the VM's actions_after_* fields.
import { fileURLToPath } from 'node:url';
import type { DiskSpec, DomainConfig, NicSpec } from '../driver.js';

const MiB = 1024 * 1024;

/** A string in xl's config syntax: double-quoted, with \ and " escaped, no control characters. */
export function xlString(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return `"${clean.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A word inside a disk or vif spec: a comma, '=' or space would split the spec. */
function specWord(v: string, what: string): string {
  if (!/^[\w:.@+-]+$/.test(v)) throw new Error(`${what} "${v}" cannot appear in an xl device spec`);
  return v;
}

export function diskSpec(d: DiskSpec): string {
  const parts: string[] = [];
  if (d.format !== 'empty') parts.push(`format=${d.format}`);
  parts.push(`vdev=${specWord(d.vdev, 'vdev')}`);
  parts.push(`access=${d.readonly ? 'ro' : 'rw'}`);
  if (d.cdrom) parts.push('devtype=cdrom');
  // target= must come last: everything after it, spaces included, is the path.
  if (d.format !== 'empty' && d.path) parts.push(`target=${d.path}`);
  return parts.join(', ');
}

/** The hotplug script shipped with xapid (hotplug/vif: why it replaces Xen's vif-bridge). */
export const VIF_SCRIPT = fileURLToPath(new URL('../../../drivers/xl/hotplug/vif', import.meta.url));

/** A vif spec; `script` is the hotplug script libxl runs for it ('' for xl's default). */
export function nicSpec(n: NicSpec, script = ''): string {
  const parts = [`devid=${n.devid}`, `mac=${specWord(n.mac, 'mac')}`];
  if (n.bridge) parts.push(`bridge=${specWord(n.bridge, 'bridge')}`);
  if (script) {
    if (/[,=\s]/.test(script)) throw new Error(`hotplug script path "${script}" cannot appear in an xl device spec`);
    parts.push(`script=${script}`);
  }
  return parts.join(',');
}

const truthy = (v: string | undefined) => v !== undefined && ['true', '1', 'yes', 'on'].includes(v.toLowerCase());

/** Splits bootloader arguments as a shell would for plain words and quotes. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2] ?? m[3]!);
  return out;
}

export function renderXlConfig(cfg: DomainConfig, vifScript = ''): string {
  const lines: string[] = [];
  const set = (k: string, v: string | number) => lines.push(`${k} = ${typeof v === 'number' ? String(v) : xlString(v)}`);
  const list = (k: string, vs: string[]) => lines.push(`${k} = [ ${vs.map(xlString).join(', ')} ]`);
  lines.push('# Written by xapid from the VM record; regenerated at every start.');
  set('name', cfg.name);
  set('uuid', cfg.uuid);
  set('type', cfg.hvm ? 'hvm' : 'pv');
  set('memory', Math.max(1, Math.floor(cfg.memory.targetBytes / MiB)));
  set('maxmem', Math.max(1, Math.floor(cfg.memory.maxBytes / MiB)));
  set('vcpus', cfg.vcpus.atStartup);
  set('maxvcpus', cfg.vcpus.max);
  if (cfg.vcpus.weight !== undefined) set('cpu_weight', cfg.vcpus.weight);
  if (cfg.vcpus.cap !== undefined) set('cap', cfg.vcpus.cap);
  if (cfg.vcpus.mask) set('cpus', cfg.vcpus.mask);
  if (cfg.pv) {
    const pv = cfg.pv;
    if (pv.bootloader) {
      set('bootloader', pv.bootloader);
      const args = splitArgs(pv.bootloaderArgs);
      if (args.length) list('bootloader_args', args);
    }
    if (pv.kernel) set('kernel', pv.kernel);
    if (pv.ramdisk) set('ramdisk', pv.ramdisk);
    if (pv.args) set('cmdline', pv.args);
  }
  if (cfg.hvm) {
    if (cfg.hvmBoot?.order) set('boot', cfg.hvmBoot.order);
    if (cfg.memory.shadowMiB > 0) set('shadow_memory', cfg.memory.shadowMiB);
    for (const flag of ['acpi', 'apic', 'pae', 'viridian', 'hpet']) {
      if (cfg.platform[flag] !== undefined) set(flag, truthy(cfg.platform[flag]) ? 1 : 0);
    }
    if (cfg.platform.timer_mode !== undefined && /^\d+$/.test(cfg.platform.timer_mode)) set('timer_mode', Number(cfg.platform.timer_mode));
  }
  set('on_poweroff', 'preserve');
  set('on_reboot', 'preserve');
  set('on_crash', 'preserve');
  set('on_watchdog', 'preserve');
  // Bootable disks first: a PV bootloader looks at the first disk.
  const disks = [...cfg.disks].sort((a, b) => Number(b.bootable) - Number(a.bootable));
  list('disk', disks.map(diskSpec));
  list('vif', [...cfg.nics].sort((a, b) => a.devid - b.devid).map((n) => nicSpec(n, vifScript)));
  return `${lines.join('\n')}\n`;
}
