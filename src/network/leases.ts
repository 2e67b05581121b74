// What xapid makes of DHCP leases (the clients are in ./dhcp.ts), as xapi does: a DHCP
// PIF's IP and netmask are its bridge's lease; gateway and DNS are recorded on the
// management PIF only (the one whose lease may set the default route); without a lease
// the last values stay. PIF.reconfigure_ip and PIF.plug wait a while for a first lease,
// as xapi waits for dhclient, but no lease is no error: the address comes later.
import type { PIFRecord } from '../datamodel/records.js';
import { netmaskOfPrefix } from './names.js';
import type { NetworkState } from './state.js';

/** Writes the leases of this host's attached DHCP PIFs to their records (and, in host
 * mode, the management PIF's to the host's address) where they differ. */
export function recordLeases(svc: NetworkState): void {
  const dhcp = svc.dhcp;
  if (!dhcp) return;
  const changes: Array<[string, Partial<PIFRecord>]> = [];
  let address: string | undefined;
  for (const [ref, p] of svc.localPifs()) {
    if (p.ip_configuration_mode !== 'DHCP' || !p.currently_attached) continue;
    const lease = dhcp.lease(svc.bridgeOf(p.network));
    if (lease?.state !== 'bound') continue;
    const next: Partial<PIFRecord> = { IP: lease.ip, netmask: netmaskOfPrefix(lease.prefixlen) };
    if (p.management) {
      if (lease.router) next.gateway = lease.router;
      if (lease.dns.length) next.DNS = lease.dns.join(',');
      if (svc.mode === 'host') address = lease.ip;
    }
    if ((Object.keys(next) as Array<keyof PIFRecord>).some((k) => p[k] !== next[k])) changes.push([ref, next]);
  }
  if (address === svc.store.field('host', svc.hostRef, 'address')) address = undefined;
  if (!changes.length && address === undefined) return;
  try {
    svc.store.tx(() => {
      for (const [ref, next] of changes) svc.store.update('PIF', ref, next);
      if (address !== undefined) svc.store.update('host', svc.hostRef, { address });
    });
  } catch (err) {
    svc.log.error({ err: err instanceof Error ? err.message : String(err) }, 'could not record DHCP leases');
  }
}

/** Waits (at most svc.dhcpWaitMs) until the client of a DHCP PIF holds a lease or has
 * gone through a round of discovery without one; the outcome is only logged. */
export async function awaitLease(svc: NetworkState, pif: string): Promise<void> {
  const p = svc.store.get('PIF', pif);
  if (!svc.dhcp || !p || p.ip_configuration_mode !== 'DHCP' || !p.currently_attached) return;
  const bridge = svc.bridgeOf(p.network);
  const how = await svc.dhcp.waitForLease(bridge, svc.dhcpWaitMs);
  if (how === 'bound') return;
  const why = {
    failed: 'no DHCP server answered',
    exited: 'the DHCP client is not running (its end is logged above)',
    timeout: `no DHCP lease within ${svc.dhcpWaitMs / 1000} s`,
  }[how];
  svc.log.warn({ pif, bridge }, `${why}: the PIF stays in DHCP mode without an address for now; the client keeps asking`);
}
