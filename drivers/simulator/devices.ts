// The simulated domains' disks and NICs: their backend entries in xenstore, hot-plug,
// and CD media changes.
import { DriverError, type DiskSpec, type NicSpec } from '../driver.js';
import { simulatedIp } from './guest.js';
import type { DomainNotices, SimDomain, SimState } from './state.js';
import { SIM_TIMINGS, type SimClock } from './timing.js';
import type { SimXenstore } from './xenstore.js';

export function writeDisk(xs: SimXenstore, d: SimDomain, disk: DiskSpec): void {
  const p = `/local/domain/${d.domid}/device/vbd/${disk.vdev}`;
  xs.write(`${p}/state`, '4');
  xs.write(`${p}/params`, disk.path);
  xs.write(`${p}/mode`, disk.readonly ? 'r' : 'w');
  xs.write(`${p}/device-type`, disk.cdrom ? 'cdrom' : 'disk');
}

export function writeNic(xs: SimXenstore, d: SimDomain, nic: NicSpec): void {
  const p = `/local/domain/${d.domid}/device/vif/${nic.devid}`;
  xs.write(`${p}/state`, '4');
  xs.write(`${p}/mac`, nic.mac);
  xs.write(`${p}/bridge`, nic.bridge);
}

export class SimDevices {
  constructor(
    private readonly state: SimState,
    private readonly clock: SimClock,
    private readonly notices: DomainNotices,
  ) {}

  async attachDisk(domid: number, disk: DiskSpec): Promise<void> {
    const command = `block-attach ${domid} ${disk.vdev}`;
    const d = this.state.get(domid, command);
    if (d.disks.some((x) => x.vdev === disk.vdev)) throw new DriverError('device', `device ${disk.vdev} already exists in domain ${domid}`, { command });
    await this.clock.wait(SIM_TIMINGS.hotplug);
    d.disks.push({ ...disk });
    writeDisk(this.state.xs, d, disk);
    this.notices.changed(d);
  }

  async detachDisk(domid: number, vdev: string): Promise<void> {
    const command = `block-detach ${domid} ${vdev}`;
    const d = this.state.get(domid, command);
    const i = d.disks.findIndex((x) => x.vdev === vdev);
    if (i < 0) throw new DriverError('device', `device ${vdev} is not attached to domain ${domid}`, { command });
    await this.clock.wait(SIM_TIMINGS.hotplug);
    d.disks.splice(i, 1);
    this.state.xs.remove(`/local/domain/${domid}/device/vbd/${vdev}`);
    this.notices.changed(d);
  }

  async attachNic(domid: number, nic: NicSpec): Promise<void> {
    const command = `network-attach ${domid} ${nic.devid}`;
    const d = this.state.get(domid, command);
    if (d.nics.some((x) => x.devid === nic.devid)) throw new DriverError('device', `network device ${nic.devid} already exists in domain ${domid}`, { command });
    await this.clock.wait(SIM_TIMINGS.hotplug);
    d.nics.push({ ...nic });
    writeNic(this.state.xs, d, nic);
    if (d.agentUp) this.state.xs.write(`/local/domain/${domid}/attr/eth${nic.devid}/ip`, simulatedIp(nic.mac));
    this.notices.changed(d);
    if (d.agentUp) this.notices.agentWrote(d);
  }

  async detachNic(domid: number, devid: number): Promise<void> {
    const command = `network-detach ${domid} ${devid}`;
    const d = this.state.get(domid, command);
    const i = d.nics.findIndex((x) => x.devid === devid);
    if (i < 0) throw new DriverError('device', `network device ${devid} is not attached to domain ${domid}`, { command });
    await this.clock.wait(SIM_TIMINGS.hotplug);
    d.nics.splice(i, 1);
    this.state.xs.remove(`/local/domain/${domid}/device/vif/${devid}`);
    this.state.xs.remove(`/local/domain/${domid}/attr/eth${devid}`);
    this.notices.changed(d);
    if (d.agentUp) this.notices.agentWrote(d);
  }

  async changeCd(domid: number, vdev: string, disk: DiskSpec | undefined): Promise<void> {
    const command = `cd-${disk ? 'insert' : 'eject'} ${domid} ${vdev}`;
    const d = this.state.get(domid, command);
    const cur = d.disks.find((x) => x.vdev === vdev);
    if (!cur || !cur.cdrom) throw new DriverError('device', `${vdev} is not a CD drive of domain ${domid}`, { command });
    await this.clock.wait(SIM_TIMINGS.hotplug);
    Object.assign(cur, disk ? { path: disk.path, format: disk.format } : { path: '', format: 'empty' });
    writeDisk(this.state.xs, d, cur);
    this.notices.changed(d);
  }
}
