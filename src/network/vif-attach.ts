// A VIF's backend interface (e.g. vif3.0) on its network's bridge and off it again, for
// the hypervisor driver and the VM power-state machine. These run inside the service's
// one-at-a-time chain: NetworkService.attachVif/detachVif queue them.
import { XenApiError, fail } from '../core/errors.js';
import { updateAllowedOperations } from '../core/operations.js';
import { IpError } from './ip.js';
import { ALIAS } from './host.js';
import { describe, type NetworkState } from './state.js';

/** Attaches a VIF's backend interface to its network's bridge, with the VIF's MTU and
 * rate limit, and records the VIF as attached. Call once the driver has made the
 * backend device. In namespace mode a missing backend (a simulated domain's) gets a tap
 * stand-in, marked "xapid:vif", that detachFromBridge deletes; in host mode it is an
 * error. Failures are CANNOT_PLUG_VIF and undone. */
export async function attachToBridge(net: NetworkState, vifRef: string, ifname: string): Promise<void> {
  const vif = net.store.get('VIF', vifRef);
  if (!vif) fail('HANDLE_INVALID', 'VIF', vifRef);
  const bridge = net.bridgeOf(vif.network);
  const undo = net.undo();
  try {
    if (net.host.live && !(await net.host.link(ifname))) {
      if (net.mode !== 'namespace') throw new IpError(['ip', 'link', 'show', ifname], 'missing', `the backend device ${ifname} is not present`);
      await net.host.addTap(ifname, undo);
    }
    await net.host.ensureBridge(bridge, undo);
    await net.host.setLink(ifname, { mtu: vif.MTU > 0 ? vif.MTU : undefined, master: bridge, up: true }, undo);
    await net.host.flush();
    const kbps = rateLimitOf(vif.qos_algorithm_type, vif.qos_algorithm_params);
    if (kbps !== undefined) await net.host.setRateLimit(ifname, kbps);
    else if (vif.qos_algorithm_type) net.log.warn({ vif: vifRef, type: vif.qos_algorithm_type }, 'VIF QoS setting not supported: ignored');
  } catch (e) {
    await undo.run();
    net.log.error({ err: describe(e), vif: vifRef, ifname }, 'could not attach a VIF to its bridge');
    if (e instanceof XenApiError) throw e;
    fail('CANNOT_PLUG_VIF', vifRef);
  }
  setAttached(net, vifRef, true);
}

/** Takes a VIF's backend interface off its bridge (if it still exists) and records
 * the VIF as detached (a driver that deleted the device passes no name). */
export async function detachFromBridge(net: NetworkState, vifRef: string, ifname?: string): Promise<void> {
  if (!net.store.exists('VIF', vifRef)) fail('HANDLE_INVALID', 'VIF', vifRef);
  try {
    if (ifname) {
      const l = await net.host.link(ifname);
      if (l?.alias === ALIAS.vif) await net.host.deleteOwned(ifname);
      else await net.host.release(ifname);
    }
    await net.host.flush();
  } catch (e) {
    if (!(e instanceof IpError && e.kind === 'missing')) throw e;
  }
  setAttached(net, vifRef, false);
}

function setAttached(net: NetworkState, vifRef: string, attached: boolean): void {
  net.store.tx(() => {
    net.store.update('VIF', vifRef, { currently_attached: attached });
    updateAllowedOperations(net.store, 'VIF', vifRef);
  });
}

/** kbit/s of a `ratelimit` VIF QoS setting, if valid. */
export function rateLimitOf(type: string, params: Record<string, string>): number | undefined {
  if (type !== 'ratelimit') return undefined;
  const kbps = Number(params.kbps);
  return Number.isSafeInteger(kbps) && kbps > 0 ? kbps : undefined;
}
