// The start of a later run: the host is made to match the database, and the database
// records what cannot be (a NIC that vanished leaves its PIF unplugged).
import type { PIFRecord } from '../datamodel/records.js';
import { NULL_REF } from '../datamodel/model.js';
import { isOwned } from './host.js';
import { validIfName, vifBackendName } from './names.js';
import { planOf } from './plans.js';
import { realize } from './realize.js';
import { describe, type NetworkState } from './state.js';

export async function reconcile(net: NetworkState): Promise<void> {
  if (!net.host.live) return;
  const links = await net.host.links();
  const order = (p: PIFRecord) => (net.isVlanPif(p) ? 2 : net.isBondMaster(p) ? 1 : 0);
  const pifs = net.localPifs().sort(([, a], [, b]) => order(a) - order(b));
  for (const [ref, p] of pifs) {
    if (p.physical && !links.has(p.device)) {
      if (p.currently_attached) net.store.update('PIF', ref, { currently_attached: false });
      net.log.warn({ device: p.device, pif: ref }, 'the NIC of a PIF is gone: PIF marked unplugged');
      continue;
    }
    if (!p.currently_attached || p.bond_slave_of !== NULL_REF) continue;
    const undo = net.undo();
    try {
      await realize(net, planOf(net, ref), undo);
    } catch (e) {
      await undo.run();
      net.store.update('PIF', ref, { currently_attached: false });
      net.log.error({ err: describe(e), device: net.deviceOf(p), pif: ref }, 'could not bring a PIF back up: marked unplugged');
    }
  }
  // Every network's bridge exists (internal networks included).
  for (const [ref, n] of net.store.allRecords('network')) {
    if (!validIfName(n.bridge as string)) {
      net.log.warn({ bridge: n.bridge, network: ref }, 'a network\'s bridge name is not a valid interface name: no bridge made');
      continue;
    }
    try {
      const made = await net.host.ensureBridge(n.bridge as string);
      await net.host.flush();
      if (made) net.log.info({ bridge: n.bridge, network: ref }, 'bridge recreated');
    } catch (e) {
      net.log.error({ err: describe(e), bridge: n.bridge }, 'could not recreate the bridge of a network');
    }
  }
  // Devices xapid made that nothing in the database wants any more (left by a crash).
  const wanted = new Set<string>([...net.store.allRecords('network').values()].map((n) => n.bridge as string));
  for (const [, p] of net.localPifs()) if (!p.physical && p.currently_attached) wanted.add(net.deviceOf(p));
  for (const v of net.store.allRecords('VIF').values()) {
    const vm = net.store.get('VM', v.VM as string);
    if (v.currently_attached && vm && vm.power_state === 'Running') wanted.add(vifBackendName(vm.domid, v.device as string));
  }
  for (const l of (await net.host.links()).values()) {
    if (isOwned(l) && !wanted.has(l.name)) {
      net.log.info({ device: l.name }, 'removing a device xapid made that nothing uses');
      await net.host.deleteOwned(l.name).then(() => net.host.flush()).catch((err) => net.log.warn({ err: describe(err) }, 'could not remove it'));
    }
  }
}
