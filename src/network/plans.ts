// What a PIF needs on the host, as a plan: read from the database for an existing PIF,
// or written by an operation for one it is about to make (a VLAN, a bond). ./realize.ts
// carries plans out.
import type { PIFRecord } from '../datamodel/records.js';
import { natural, vlanDeviceName } from './names.js';
import type { NetworkState } from './state.js';

export interface IpPlan {
  mode: 'None' | 'DHCP' | 'Static';
  IP: string;
  netmask: string;
  gateway: string;
  management: boolean;
}

export interface BondPlan {
  name: string;
  /** The XenAPI bond mode. */
  mode: string;
  options: Record<string, string>;
  mac: string;
  members: string[];
}

/** What one PIF needs on the host: exactly one of physical, vlan, bond. */
export interface PifPlan {
  pif?: string;
  bridge: string;
  ip: IpPlan;
  physical?: { device: string };
  vlan?: { device: string; lower: string; tag: number; lowerBond?: BondPlan };
  bond?: BondPlan;
}

export function ipPlanOf(p: PIFRecord): IpPlan {
  return { mode: p.ip_configuration_mode, IP: p.IP, netmask: p.netmask, gateway: p.gateway, management: p.management };
}

/** What a PIF needs on the host, from the database. */
export function planOf(net: NetworkState, ref: string): PifPlan {
  const p = net.pif(ref);
  const plan: PifPlan = { pif: ref, bridge: net.bridgeOf(p.network), ip: ipPlanOf(p) };
  if (net.isVlanPif(p)) {
    const vlan = net.store.get('VLAN', p.VLAN_master_of)!;
    const tagged = net.pif(vlan.tagged_PIF);
    plan.vlan = { device: vlanDeviceName(tagged.device, vlan.tag), lower: tagged.device, tag: vlan.tag };
    if (net.isBondMaster(tagged)) plan.vlan.lowerBond = bondPlanOf(net, vlan.tagged_PIF);
  } else if (net.isBondMaster(p)) {
    plan.bond = bondPlanOf(net, ref);
  } else {
    plan.physical = { device: p.device };
  }
  return plan;
}

export function bondPlanOf(net: NetworkState, masterRef: string): BondPlan {
  const master = net.pif(masterRef);
  const bond = net.store.get('Bond', master.bond_master_of[0]!)!;
  const mode = master.other_config['bond-mode'] ?? 'balance-slb';
  return {
    name: master.device, mode, options: bondOptions(mode, master.other_config), mac: master.MAC,
    members: bond.slaves.map((s) => net.pif(s).device).sort(natural),
  };
}

/** `ip link add type bond` options from a bond master's other_config (xapi's keys). */
export function bondOptions(mode: string, cfg: Record<string, string>): Record<string, string> {
  const num = (k: string, d: string) => (/^\d+$/.test(cfg[k] ?? '') ? cfg[k]! : d);
  const miimon = num('bond-miimon', '100');
  const opts: Record<string, string> = { miimon, updelay: num('bond-updelay', '31000'), downdelay: num('bond-downdelay', '200') };
  // The kernel wants the delays to be multiples of miimon.
  for (const k of ['updelay', 'downdelay']) opts[k] = String(Math.round(Number(opts[k]) / Number(miimon)) * Number(miimon));
  if (mode === 'lacp') opts.xmit_hash_policy = cfg['bond-hashing-algorithm'] === 'src_mac' ? 'layer2' : 'layer3+4';
  return opts;
}
