// This host's administration: host.disable and host.enable. A disabled host takes no
// new VMs (VM.start and resume answer HOST_DISABLED) while the running ones go on. As in
// xapi, a host disabled with auto_enable=true comes back enabled when the toolstack
// restarts; one disabled with auto_enable=false stays disabled until host.enable, across
// restarts, which a marker file in the state directory remembers.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../core/errors.js';
import type { ObjectStore } from '../db/store.js';

export interface HostAdminDeps {
  store: ObjectStore;
  hostRef: string;
  stateDir: string;
}

export class HostAdmin {
  private readonly marker: string;

  constructor(private readonly d: HostAdminDeps) {
    this.marker = path.join(d.stateDir, 'host-disabled');
  }

  /** At daemon start: enabled unless a disable without auto_enable is still in force. */
  start(): void {
    const enabled = !existsSync(this.marker);
    if (this.d.store.field('host', this.d.hostRef, 'enabled') !== enabled) this.d.store.update('host', this.d.hostRef, { enabled });
  }

  disable(host: string, autoEnable: boolean): void {
    this.thisHost(host);
    if (autoEnable) rmSync(this.marker, { force: true });
    else writeFileSync(this.marker, 'disabled by host.disable with auto_enable=false\n');
    this.d.store.update('host', host, { enabled: false });
  }

  enable(host: string): void {
    this.thisHost(host);
    rmSync(this.marker, { force: true });
    this.d.store.update('host', host, { enabled: true });
  }

  /** Another host's administration runs on that host; without pools there is none. */
  private thisHost(host: string): void {
    if (host !== this.d.hostRef) fail('OPERATION_NOT_ALLOWED', `host ${host} is not this host, and calls are not carried to other hosts yet`);
  }
}
