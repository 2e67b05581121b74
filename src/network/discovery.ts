// NICs: finding them on the host (or the stand-ins in xapid's namespace), making the
// stand-ins, and recording each as a PIF on its bridge's network: all of them on a
// first start, one by one for PIF.introduce and PIF.scan.
import { readFileSync } from 'node:fs';
import type { PIFRecord } from '../datamodel/records.js';
import type { Link, SysFacts } from './ip.js';
import { ALIAS, isOwned } from './host.js';
import { createStandIns, ownerMark } from './namespace.js';
import { bridgeForDevice, natural, netmaskOfPrefix, networkLabelForDevice, randomMac } from './names.js';
import { planOf } from './plans.js';
import { realize } from './realize.js';
import { describe, takenMacs, type NetworkState } from './state.js';

/** A physical NIC (or its stand-in) found on the host. */
export interface Nic {
  device: string;
  mac: string;
  mtu: number;
  link: Link;
  facts: SysFacts;
}

/** Physical NICs: with a bus device in host mode; the stand-ins in a namespace. */
export async function nics(net: NetworkState): Promise<Nic[]> {
  if (!net.host.live) return [];
  const { links, facts } = await net.host.state();
  const out: Nic[] = [];
  for (const link of links.values()) {
    const f = facts.get(link.name) ?? {};
    // In host mode: a device on a bus, not a guest's netback device (those hang off xen-backend).
    const physical = net.mode === 'host'
      ? !link.kind && Boolean(f.busPath) && !/\/(virtual|xen-backend)\//.test(f.busPath!) && !/^(vif|tap)\d/.test(link.name) && !isOwned(link) && link.alias !== ALIAS.nic
      : link.alias === ALIAS.nic;
    if (!physical) continue;
    out.push({ device: link.name, mac: link.permMac ?? link.mac, mtu: link.mtu, link, facts: f });
  }
  return out.sort((a, b) => natural(a.device, b.device));
}

/** In an owned namespace, the NICs the database knows (with their MACs), or eth0…ethN-1
 * on a first start, exist as stand-ins. `fresh`: the namespace was made just now. */
export async function ensureStandIns(net: NetworkState, simNics: number, fresh: boolean): Promise<void> {
  const known = net.localPifs().filter(([, p]) => p.physical).map(([, p]) => ({ device: p.device, mac: p.MAC }));
  const wanted = known.length ? known : Array.from({ length: simNics }, (_, i) => ({ device: `eth${i}`, mac: undefined as string | undefined }));
  // A namespace made just now holds only lo.
  const links = fresh ? new Map() : await net.host.links();
  const missing = wanted.filter((w) => !links.has(w.device));
  await createStandIns(net.host.ip, missing, [['link', 'set', 'dev', 'lo', 'alias', ownerMark(), 'up']]);
  net.host.invalidate();
  if (missing.length) net.log.debug({ devices: missing.map((m) => m.device) }, 'stand-in NICs created');
}

/** First start: a PIF, network and bridge for every NIC; the management one marked. */
export async function firstStart(net: NetworkState, simNics: number): Promise<void> {
  if (!net.host.live) {
    const taken = takenMacs(net.store);
    net.store.tx(() => {
      for (let i = 0; i < simNics; i++) {
        const device = `eth${i}`;
        const mac = randomMac(taken);
        taken.add(mac);
        const network = net.networkForBridge(bridgeForDevice(device), networkLabelForDevice(device));
        net.createPif({ device, network, MAC: mac, MTU: 1500, physical: true, currently_attached: true, management: i === 0 });
      }
    });
    net.log.info({ nics: simNics }, 'stand-in NICs recorded in the database only');
    return;
  }
  const found = await nics(net);
  const management = net.mode === 'host' ? await hostManagementDevice(net, found) : found[0]?.device;
  for (const nic of found) await introduceNic(net, nic, { management: nic.device === management, plugPolicy: net.mode === 'host' ? 'safe' : 'always' });
  net.log.info({ nics: found.map((n) => n.device), management }, 'PIFs created for the NICs found');
}

/** In host mode: the NIC behind the management interface named by a Xen inventory, or
 * the one (or whose bridge) holding the host's address. */
async function hostManagementDevice(net: NetworkState, found: Nic[]): Promise<string | undefined> {
  let bridge: string | undefined;
  try {
    const inv = readFileSync('/etc/xensource-inventory', 'utf8');
    bridge = /^MANAGEMENT_INTERFACE='?([^'\n]*)'?/m.exec(inv)?.[1] || undefined;
  } catch {
    /* no inventory: not a XenServer-style install */
  }
  const address = net.store.field('host', net.hostRef, 'address');
  for (const nic of found) {
    const carrierDev = nic.link.master ?? nic.device;
    if (bridge && (carrierDev === bridge || bridgeForDevice(nic.device) === bridge)) return nic.device;
    if (!bridge && address && (await net.host.addresses(carrierDev)).some((a) => a.address === address)) return nic.device;
  }
  return undefined;
}

/** Records a NIC as a PIF (on the network of its bridge) and, per policy, plugs it.
 * 'safe' (host mode) plugs only NICs nobody else configured: no address, no master. */
export async function introduceNic(net: NetworkState, nic: Nic, opts: { management: boolean; plugPolicy: 'always' | 'safe' | 'never' }): Promise<string> {
  const bridge = bridgeForDevice(nic.device);
  // What the NIC carries now (the address sits on its bridge if it already has one).
  const carrierDev = nic.link.master ?? nic.device;
  const addrs = await net.host.addresses(carrierDev);
  const ipConfig: Partial<PIFRecord> = {};
  const first = addrs[0];
  if (first) {
    Object.assign(ipConfig, { ip_configuration_mode: first.dynamic ? 'DHCP' : 'Static', IP: first.address, netmask: netmaskOfPrefix(first.prefixlen) });
    const gw = await net.host.ip.defaultGateway().catch(() => undefined);
    if (gw && gw.dev === carrierDev) ipConfig.gateway = gw.gateway;
    if (opts.management) ipConfig.DNS = readNameservers();
  }
  const alreadyOnBridge = nic.link.master === bridge;
  const ref = net.store.tx(() => {
    const network = net.networkForBridge(bridge, networkLabelForDevice(nic.device));
    return net.createPif({
      device: nic.device, network, MAC: nic.mac, MTU: nic.mtu, physical: true,
      currently_attached: alreadyOnBridge, management: opts.management, ...ipConfig,
    });
  });
  const plug = opts.plugPolicy === 'always' || (opts.plugPolicy === 'safe' && !alreadyOnBridge && !nic.link.master && addrs.length === 0);
  if (plug) {
    const undo = net.undo();
    try {
      await realize(net, planOf(net, ref), undo);
      net.store.update('PIF', ref, { currently_attached: true });
    } catch (e) {
      await undo.run();
      net.log.error({ err: describe(e), device: nic.device }, 'could not plug the PIF of a NIC found; it stays unplugged');
    }
  } else if (!alreadyOnBridge && opts.plugPolicy === 'safe') {
    net.log.warn({ device: nic.device, master: nic.link.master, addresses: addrs.length }, 'NIC already configured outside xapid: PIF recorded unplugged (PIF.plug moves it onto its bridge)');
  }
  return ref;
}

function readNameservers(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8').split('\n').map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1]).filter(Boolean).join(',');
  } catch {
    return '';
  }
}
