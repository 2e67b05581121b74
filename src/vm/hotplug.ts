// Hot-plug of disks and NICs into running VMs: the storage layer's BlockDeviceDriver and
// the network layer's VifHotplug, carried out by the hypervisor driver. It needs only
// the database and the driver, so daemon.ts makes it before the storage and network
// services that use it, and the VM service that uses those.
import type { Driver } from '../../drivers/driver.js';
import { fail } from '../core/errors.js';
import type { ObjectStore } from '../db/store.js';
import type { VifHotplug } from '../network/service.js';
import { vifBackendName } from '../network/names.js';
import type { AttachedDisk, BlockDeviceDriver } from '../storage/service.js';
import { diskSpecs, type DiskSource } from './config.js';
import { withVmError, type VmOp } from './errors.js';

export class VmHotplug implements BlockDeviceDriver {
  /** The VIF side, as the network service expects it. */
  readonly vifs: VifHotplug;

  constructor(private readonly store: ObjectStore, private readonly driver: Driver) {
    this.vifs = { plug: (vm, vif) => this.attachNic(vm, vif), unplug: (vm, vif) => this.detachNic(vm, vif) };
  }

  private runningDomid(vm: string): number {
    const rec = this.store.get('VM', vm);
    if (!rec) fail('HANDLE_INVALID', 'VM', vm);
    if (rec.power_state !== 'Running' && rec.power_state !== 'Paused') fail('VM_BAD_POWER_STATE', vm, 'running, paused', rec.power_state.toLowerCase());
    return rec.domid;
  }

  private diskSpecFor(vm: string, vbd: string, disk: AttachedDisk | undefined) {
    const rec = this.store.get('VM', vm)!;
    const b = this.store.get('VBD', vbd)!;
    const src = disk ? new Map([[vbd, { path: disk.path, format: (disk.format === 'qcow2' || disk.format === 'vhd' ? disk.format : 'raw') as DiskSource['format'] }]]) : new Map<string, DiskSource>();
    return diskSpecs({ vm: rec, vbds: [[vbd, b]], disks: src })[0]!;
  }

  /** Runs a driver call for a device of the VM, its failure mapped to the operation's error. */
  private async device<T>(vm: string, op: VmOp, type: 'VBD' | 'VIF', ref: string, fn: (domid: number) => Promise<T>): Promise<T> {
    const domid = this.runningDomid(vm);
    return withVmError(vm, op, () => fn(domid), { type, ref });
  }

  // ---- BlockDeviceDriver ----------------------------------------------------------------

  async plug(vm: string, vbd: string, disk: AttachedDisk | undefined): Promise<{ device: string }> {
    const spec = this.diskSpecFor(vm, vbd, disk);
    await this.device(vm, 'attach', 'VBD', vbd, (domid) => this.driver.attachDisk(domid, spec));
    return { device: spec.vdev };
  }

  async unplug(vm: string, vbd: string, force: boolean): Promise<void> {
    const spec = this.diskSpecFor(vm, vbd, undefined);
    await this.device(vm, 'detach', 'VBD', vbd, (domid) => this.driver.detachDisk(domid, spec.vdev, force));
  }

  async changeMedium(vm: string, vbd: string, disk: AttachedDisk | undefined): Promise<void> {
    const spec = this.diskSpecFor(vm, vbd, disk);
    await this.device(vm, 'attach', 'VBD', vbd, (domid) => this.driver.changeCd(domid, spec.vdev, disk ? spec : undefined));
  }

  // ---- VIFs ---------------------------------------------------------------------------------

  /** Creates the VIF's backend in the running domain; returns its host interface name. */
  private async attachNic(vm: string, vif: string): Promise<string> {
    const v = this.store.get('VIF', vif)!;
    const bridge = this.store.field('network', v.network, 'bridge') ?? '';
    return this.device(vm, 'attach', 'VIF', vif, async (domid) => {
      await this.driver.attachNic(domid, { devid: Number.parseInt(v.device, 10) || 0, vif, mac: v.MAC, bridge, mtu: v.MTU || 1500 });
      return vifBackendName(domid, v.device);
    });
  }

  private async detachNic(vm: string, vif: string): Promise<void> {
    const v = this.store.get('VIF', vif)!;
    await this.device(vm, 'detach', 'VIF', vif, (domid) => this.driver.detachNic(domid, Number.parseInt(v.device, 10) || 0, false));
  }
}
