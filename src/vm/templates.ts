// The templates a host has from its first start, as a dom0 install ships them: a PV
// Linux template that boots with pygrub from the disk its `disks` spec provisions, and
// HVM templates that boot in BIOS order. Clients clone one, rewrite the `sr` attributes
// of the clone's other_config:disks to a real SR, provision and start it. Missing ones
// are put back at every start; they cannot be destroyed (default_template=true).
import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../db/store.js';
import { NULL_REF } from '../datamodel/model.js';
import type { VMRecord } from '../datamodel/records.js';
import { now } from '../core/datetime.js';
import { updateAllowedOperations } from '../core/operations.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const RECOMMENDATIONS = '<restrictions><restriction field="memory-static-max" max="34359738368" /><restriction field="vcpus-max" max="8" /><restriction property="number-of-vbds" max="7" /><restriction property="number-of-vifs" max="7" /></restrictions>';

const disk = (device: number, size: number, bootable: boolean, type = 'system') =>
  `<disk device="${device}" size="${size}" sr="" bootable="${bootable}" type="${type}"/>`;
const provision = (...disks: string[]) => `<provision>${disks.join('')}</provision>`;

export interface TemplateSpec {
  name: string;
  description: string;
  record: Partial<VMRecord>;
}

function base(memory: number, minMemory: number): Partial<VMRecord> {
  return {
    is_a_template: true,
    user_version: 1,
    power_state: 'Halted',
    memory_static_max: memory,
    memory_dynamic_max: memory,
    memory_target: memory,
    memory_dynamic_min: minMemory,
    memory_static_min: minMemory,
    VCPUs_max: 1,
    VCPUs_at_startup: 1,
    VCPUs_params: {},
    actions_after_shutdown: 'destroy',
    actions_after_reboot: 'restart',
    actions_after_crash: 'restart',
    recommendations: RECOMMENDATIONS,
    domid: -1,
    affinity: NULL_REF,
    resident_on: NULL_REF,
    PV_bootloader: '',
    PV_kernel: '',
    PV_ramdisk: '',
    PV_args: '',
    PV_bootloader_args: '',
    PV_legacy_args: '',
    HVM_boot_policy: '',
    HVM_boot_params: {},
    PCI_bus: '',
  };
}

export const DEFAULT_TEMPLATES: TemplateSpec[] = [
  {
    name: 'Debian Bookworm 12 (pygrub)',
    description: 'A paravirtualised Debian guest booted by pygrub from its first disk (8 GiB, provisioned from other_config:disks).',
    record: {
      ...base(256 * MiB, 128 * MiB),
      PV_bootloader: 'pygrub',
      PV_args: 'console=hvc0 quiet',
      platform: { nx: 'false', acpi: 'true', apic: 'true', pae: 'true', viridian: 'false' },
      other_config: { linux_template: 'true', 'install-distro': 'debianlike', 'debian-release': 'bookworm', disks: provision(disk(0, 8 * GiB, true)) },
    },
  },
  {
    name: 'Other install media',
    description: 'An HVM guest that boots from its CD drive, then its disk (BIOS order "dc"); no disk is provisioned.',
    record: {
      ...base(256 * MiB, 128 * MiB),
      HVM_boot_policy: 'BIOS order',
      HVM_boot_params: { order: 'dc' },
      platform: { nx: 'true', acpi: 'true', apic: 'true', pae: 'true', viridian: 'true' },
      other_config: { 'install-methods': 'cdrom' },
    },
  },
  {
    name: 'Generic HVM guest (BIOS order)',
    description: 'An HVM guest with an 8 GiB bootable disk, booting from disk then CD (BIOS order "cd").',
    record: {
      ...base(512 * MiB, 256 * MiB),
      HVM_boot_policy: 'BIOS order',
      HVM_boot_params: { order: 'cd' },
      platform: { nx: 'true', acpi: 'true', apic: 'true', pae: 'true', viridian: 'true' },
      other_config: { 'install-methods': 'cdrom', disks: provision(disk(0, 8 * GiB, true)) },
    },
  },
];

/** Creates the default templates that are missing; returns how many were made. */
export function ensureDefaultTemplates(store: ObjectStore): number {
  return store.tx(() => {
    const present = new Set<string>();
    for (const rec of store.allRecords('VM').values()) {
      const oc = rec.other_config as Record<string, string>;
      if (rec.is_a_template && oc.default_template === 'true') present.add(rec.name_label as string);
    }
    let made = 0;
    for (const t of DEFAULT_TEMPLATES) {
      if (present.has(t.name)) continue;
      const metrics = store.create('VM_metrics', { last_updated: now() });
      const ref = store.create('VM', {
        ...t.record,
        name_label: t.name,
        name_description: t.description,
        other_config: { ...t.record.other_config, default_template: 'true', mac_seed: randomUUID() },
        metrics,
      });
      updateAllowedOperations(store, 'VM', ref);
      made++;
    }
    return made;
  });
}
