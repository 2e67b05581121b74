// PIF_metrics from what the kernel reports (carrier, speed, duplex, PCI identity), at
// start, after the operations that change links, and on a timer.
import type { PIF_metricsRecord } from '../datamodel/records.js';
import { now } from '../core/datetime.js';
import { pciNames } from './pciids.js';
import type { NetworkState } from './state.js';

/** PIF_metrics from what the kernel reports now; written only where something changed. */
export async function refreshMetrics(net: NetworkState): Promise<void> {
  if (!net.host.live) return;
  const { links, facts } = await net.host.state();
  net.store.tx(() => {
    for (const [, p] of net.localPifs()) {
      if (!net.store.exists('PIF_metrics', p.metrics)) continue;
      const dev = net.deviceOf(p);
      const l = links.get(dev);
      const f = facts.get(dev) ?? {};
      const names = pciNames(f.vendorId, f.deviceId);
      const next: Partial<PIF_metricsRecord> = {
        carrier: Boolean(l?.up && l.carrier),
        speed: l?.up && l.carrier ? f.speed ?? 0 : 0,
        duplex: Boolean(l?.up && l.carrier && f.duplexFull),
        vendor_id: f.vendorId ?? '',
        device_id: f.deviceId ?? '',
        vendor_name: names.vendor,
        device_name: names.device,
        pci_bus_path: pciAddress(f.busPath),
      };
      const cur = net.store.get('PIF_metrics', p.metrics)!;
      const changed = (Object.keys(next) as Array<keyof typeof next>).some((k) => cur[k] !== next[k]);
      if (changed) net.store.update('PIF_metrics', p.metrics, { ...next, last_updated: now() });
    }
  });
}

/** Every `seconds`: the DHCP clients' leases are read again and the metrics refreshed,
 * the refresh queued through `queue` (the service's one-at-a-time chain). The timer
 * does not keep the process alive. */
export function refreshEvery(net: NetworkState, seconds: number, queue: (fn: () => Promise<void>) => Promise<void>): NodeJS.Timeout {
  const timer = setInterval(() => {
    net.dhcp?.rereadAll();
    void queue(() => refreshMetrics(net)).catch((err) => net.log.warn({ err }, 'PIF metrics refresh failed'));
  }, seconds * 1000);
  timer.unref();
  return timer;
}

/** The PCI address (0000:00:19.0) in a sysfs device path, if there is one. */
export function pciAddress(busPath: string | undefined): string {
  const parts = (busPath ?? '').split('/').filter((x) => /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(x));
  return parts.at(-1) ?? '';
}
