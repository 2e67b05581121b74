// Networking messages: network, PIF, VLAN, Bond, VIF, the pool's VLAN helpers and
// VM.get_allowed_VIF_devices. The work is in src/network/ops.ts (networks, VIFs),
// pif-ops.ts and vlan-bond.ts.
import type { ApiContext, Handler } from './context.js';
import type { ApiRecord } from '../db/store.js';
import type { NetworkService } from '../network/service.js';
import * as ops from '../network/ops.js';
import * as pifs from '../network/pif-ops.js';
import * as vlanBond from '../network/vlan-bond.js';

const net = (ctx: ApiContext): NetworkService => ctx.daemon.network;

export const networkHandlers: Record<string, Handler> = {
  'network.create': (ctx, rec: ApiRecord) => ops.createNetwork(net(ctx), ctx, rec),
  'network.destroy': (ctx, self: string) => ops.destroyNetwork(net(ctx), ctx, self),

  'PIF.plug': (ctx, self: string) => pifs.plugPif(net(ctx), self),
  'PIF.unplug': (ctx, self: string) => pifs.unplugPif(net(ctx), self),
  'PIF.reconfigure_ip': (ctx, self: string, mode, IP: string, netmask: string, gateway: string, DNS: string) =>
    pifs.reconfigureIp(net(ctx), self, mode, IP, netmask, gateway, DNS),
  'PIF.introduce': (ctx, host: string, MAC: string, device: string) => pifs.introducePif(net(ctx), host, MAC, device),
  'PIF.scan': (ctx) => pifs.scanPifs(net(ctx)),
  'PIF.forget': (ctx, self: string) => pifs.forgetPif(net(ctx), self),
  'PIF.destroy': (ctx, self: string) => pifs.destroyPif(net(ctx), self),
  'PIF.create_VLAN': (ctx, device: string, network: string, host: string, tag: number) =>
    vlanBond.createVlanOnDevice(net(ctx), device, network, host, tag),

  'pool.create_VLAN': async (ctx, device: string, network: string, tag: number) => [
    await vlanBond.createVlanOnDevice(net(ctx), device, network, ctx.daemon.hostRef, tag),
  ],
  'pool.create_VLAN_from_PIF': async (ctx, pif: string, network: string, tag: number) => {
    const p = ctx.daemon.store.get('PIF', pif)!;
    return [await vlanBond.createVlanOnDevice(net(ctx), p.device, network, p.host, tag)];
  },

  'VLAN.create': (ctx, tagged: string, tag: number, network: string) => vlanBond.createVlan(net(ctx), tagged, tag, network),
  'VLAN.destroy': (ctx, self: string) => vlanBond.destroyVlan(net(ctx), self),

  'Bond.create': (ctx, network: string, members: string[], MAC: string, mode: string, properties: Record<string, string>) =>
    vlanBond.createBond(net(ctx), network, members, MAC, mode ?? 'balance-slb', properties ?? {}),
  'Bond.destroy': (ctx, self: string) => vlanBond.destroyBond(net(ctx), self),

  'VIF.create': (ctx, rec: ApiRecord) => ops.createVif(ctx.daemon.store, rec),
  'VIF.destroy': (ctx, self: string) => ops.destroyVif(ctx.daemon.store, self),
  'VIF.plug': (ctx, self: string) => ops.plugVif(net(ctx), ctx, self),
  'VIF.unplug': (ctx, self: string) => ops.unplugVif(net(ctx), ctx, self),

  'VM.get_allowed_VIF_devices': (ctx, vm: string) => ops.allowedVifDevices(ctx.daemon.store, vm),
};
