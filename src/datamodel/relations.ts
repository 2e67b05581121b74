// Bound field pairs (the API manual's "relationships between classes"): the set on
// the `many` side is never stored; it is the list of objects whose `one` field
// points here, so it cannot drift out of step.

export interface Relation {
  /** The class and ref field that is stored. */
  one: { cls: string; field: string };
  /** The class and ref-set field that is computed from it. */
  many: { cls: string; field: string };
}

const pairs: Array<[string, string]> = [
  ['PIF.bond_slave_of', 'Bond.slaves'],
  ['Bond.master', 'PIF.bond_master_of'],
  ['VLAN.tagged_PIF', 'PIF.VLAN_slave_of'],
  ['PBD.host', 'host.PBDs'],
  ['PBD.SR', 'SR.PBDs'],
  ['VBD.VDI', 'VDI.VBDs'],
  ['crashdump.VDI', 'VDI.crash_dumps'],
  ['VBD.VM', 'VM.VBDs'],
  ['crashdump.VM', 'VM.crash_dumps'],
  ['VIF.VM', 'VM.VIFs'],
  ['VIF.network', 'network.VIFs'],
  ['PIF.host', 'host.PIFs'],
  ['PIF.network', 'network.PIFs'],
  ['VDI.SR', 'SR.VDIs'],
  ['VTPM.VM', 'VM.VTPMs'],
  ['console.VM', 'VM.consoles'],
  ['VM.resident_on', 'host.resident_VMs'],
  ['host_cpu.host', 'host.host_CPUs'],
  ['host_crashdump.host', 'host.crashdumps'],
  ['host_patch.host', 'host.patches'],
  ['host_patch.pool_patch', 'pool_patch.host_patches'],
];

const split = (s: string) => {
  const [cls, field] = s.split('.') as [string, string];
  return { cls, field };
};

export const relations: readonly Relation[] = pairs.map(([one, many]) => ({ one: split(one), many: split(many) }));
