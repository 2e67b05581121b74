// Carrying PIF plans (./plans.ts) out on the host: a PIF up on its bridge with the
// device under it (the NIC, a bond, or an 802.1Q device) and its IP configuration, and
// taken down again. A DHCP PIF's client is started and stopped here (./dhcp.ts).
import { XenApiError } from '../core/errors.js';
import { IpError } from './ip.js';
import type { Undo } from './host.js';
import { prefixOfNetmask } from './names.js';
import type { BondPlan, IpPlan, PifPlan } from './plans.js';
import type { NetworkState } from './state.js';

/** Linux bonding modes for the XenAPI bond modes (the bridge backend has no SLB of its own). */
export const LINUX_BOND_MODE: Record<string, string> = {
  'balance-slb': 'balance-alb',
  'active-backup': 'active-backup',
  lacp: '802.3ad',
};

/** Brings a PIF up on its bridge with its IP configuration (idempotent). Every change
 * is recorded in `undo`. */
export async function realize(net: NetworkState, plan: PifPlan, undo: Undo): Promise<void> {
  const dev = await realizeLower(net, plan, undo);
  // The bridge takes the MAC of the device under it, as xapi's bridges do.
  await net.host.ensureBridge(plan.bridge, undo, (await net.host.link(dev))?.mac || undefined);
  // A bridge port carries no address of its own.
  await stripAddresses(net, dev, undo);
  await net.host.enslave(dev, plan.bridge, undo, true);
  await applyIp(net, plan.ip, plan.bridge);
  await net.host.flush();
}

/** The device under the bridge, made ready: the NIC, a bond, or an 802.1Q device. */
async function realizeLower(net: NetworkState, plan: PifPlan, undo: Undo): Promise<string> {
  if (plan.vlan) {
    const { lower, device, tag, lowerBond } = plan.vlan;
    if (net.host.live && !(await net.host.link(lower))) {
      if (lowerBond) await realizeBond(net, lowerBond, undo);
      else throw new IpError(['ip', 'link', 'show', lower], 'missing', `the device ${lower} is not present`);
    }
    await net.host.setUp(lower, true, undo);
    await net.host.addVlan(device, lower, tag, undo);
    return device;
  }
  if (plan.bond) return realizeBond(net, plan.bond, undo);
  const dev = plan.physical!.device;
  if (net.host.live && !(await net.host.link(dev))) throw new IpError(['ip', 'link', 'show', dev], 'missing', `the device ${dev} is not present`);
  return dev;
}

/** A Linux bond with its members enslaved (members leave any bridge first). */
async function realizeBond(net: NetworkState, b: BondPlan, undo: Undo): Promise<string> {
  await net.host.addBond(b.name, LINUX_BOND_MODE[b.mode] ?? b.mode, b.options, undo);
  await net.host.setLink(b.name, { mac: b.mac }, undo);
  let present = 0;
  for (const dev of b.members) {
    const l = await net.host.link(dev);
    if (net.host.live && !l) {
      net.log.warn({ bond: b.name, device: dev }, 'a bond member NIC is not present');
      continue;
    }
    present++;
    if (l?.master === b.name) continue;
    await stripAddresses(net, dev, undo);
    // The kernel enslaves only a device that is down.
    await net.host.setUp(dev, false, undo);
    await net.host.enslave(dev, b.name, undo);
  }
  if (net.host.live && present === 0) throw new IpError(['ip', 'link', 'set', b.name, 'up'], 'missing', `no member of ${b.name} is present`);
  await net.host.setUp(b.name, true, undo);
  return b.name;
}

async function stripAddresses(net: NetworkState, dev: string, undo: Undo): Promise<void> {
  const old = [...(await net.host.addresses(dev))];
  if (!old.length) return;
  await net.host.setIPv4(dev, {});
  undo.push(`restore the addresses of ${dev}`, () => net.host.restoreAddresses(dev, old));
}

/** Takes a PIF off its bridge (its IP configuration goes with it); an 802.1Q device
 * or bond xapid made is deleted. A NIC stays up while a VLAN on it is in use. */
export async function unrealize(net: NetworkState, plan: PifPlan, opts: { keepNicUp?: boolean } = {}): Promise<void> {
  await stopDhcp(net, plan.bridge);
  if (net.host.live && (await net.host.link(plan.bridge))) await net.host.setIPv4(plan.bridge, {});
  if (plan.vlan) {
    await net.host.deleteOwned(plan.vlan.device);
  } else if (plan.bond) {
    await net.host.deleteOwned(plan.bond.name);
    for (const m of plan.bond.members) await net.host.setUp(m, false);
  } else {
    const dev = plan.physical!.device;
    await net.host.release(dev);
    if (!opts.keepNicUp) await net.host.setUp(dev, false);
  }
  await net.host.flush();
}

/** Puts an IP configuration on a bridge. Static addresses are applied with `ip`; a
 * default route only for the management interface. DHCP runs a client on the bridge
 * (src/network/dhcp.ts), which puts the lease there itself; other modes stop it. */
export async function applyIp(net: NetworkState, ip: IpPlan, bridge: string): Promise<void> {
  const prefixlen = ip.mode === 'Static' ? prefixOfNetmask(ip.netmask) : undefined;
  if (ip.mode === 'Static' && prefixlen === undefined) throw new XenApiError('INVALID_IP_ADDRESS_SPECIFIED', ['netmask']);
  if (ip.mode !== 'DHCP') await stopDhcp(net, bridge);
  switch (ip.mode) {
    case 'None':
      await net.host.setIPv4(bridge, {});
      break;
    case 'DHCP':
      await net.host.setIPv4(bridge, { keepDynamic: true });
      await net.host.flush();
      try {
        // The gateway and DNS servers of a lease count for the management interface only, as in xapi.
        await net.dhcp?.start(bridge, { defaultRoute: ip.management });
      } catch (e) {
        // (PIF.reconfigure_ip checks for the client first; elsewhere the PIF stays up.)
        if (!(e instanceof IpError)) throw e;
        net.log.error({ bridge, err: e.detail }, 'the PIF is in DHCP mode, but no DHCP client can run: the bridge gets no address');
      }
      break;
    case 'Static': {
      await net.host.setIPv4(bridge, { address: ip.IP, prefixlen });
      if (ip.management && ip.gateway) await net.host.setDefaultRoute(ip.gateway, bridge);
      break;
    }
  }
  await net.host.flush();
}

/** Stops the bridge's DHCP client, if any; it releases its lease, which takes the
 * address off, so what was read of the host is read again. */
async function stopDhcp(net: NetworkState, bridge: string): Promise<void> {
  if (!net.dhcp) return;
  await net.host.flush();
  if (await net.dhcp.stop(bridge)) net.host.invalidate();
}
