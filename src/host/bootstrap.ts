// The records a fresh database needs so that real clients' first calls work: the
// pool, this host with its CPUs and metrics, and the control domain. Later starts
// find them again (same uuids) and refresh what the machine reports.
import os from 'node:os';
import type { ObjectStore } from '../db/store.js';
import { NULL_REF } from '../datamodel/model.js';
import { now } from '../core/datetime.js';
import { managementAddress, readCpus, readMemoryTotal, readXen } from './probe.js';

export const PRODUCT = { brand: 'xapid', version: '0.1.0', apiMajor: 1, apiMinor: 1 };

export interface Identity { poolRef: string; hostRef: string }

function softwareVersion(hostname: string): Record<string, string> {
  const xen = readXen();
  return {
    product_brand: PRODUCT.brand,
    product_version: PRODUCT.version,
    build_number: PRODUCT.version,
    hostname,
    date: new Date().toISOString().slice(0, 10),
    xapi: `${PRODUCT.apiMajor}.${PRODUCT.apiMinor}`,
    xen: xen?.version ?? '',
    linux: os.release(),
    node: process.versions.node,
  };
}

function dom0Memory(total: number): Record<string, number> {
  return { memory_static_max: total, memory_dynamic_max: total, memory_dynamic_min: total, memory_static_min: total, memory_target: total };
}

/** Creates or refreshes the bootstrap records; returns the pool and this host. */
export function bootstrap(store: ObjectStore): Identity {
  return store.tx(() => {
    const pools = store.all('pool');
    if (pools.length > 0) return refresh(store, pools[0]!);
    return create(store);
  });
}

function create(store: ObjectStore): Identity {
  const hostname = os.hostname();
  const cpus = readCpus();
  const memory = readMemoryTotal();
  const xen = readXen();
  const metrics = store.create('host_metrics', { memory_total: memory, live: true, last_updated: now() });
  const hostRef = store.create('host', {
    name_label: hostname,
    name_description: 'Default install of xapid',
    address: managementAddress(),
    hostname,
    enabled: true,
    API_version_major: PRODUCT.apiMajor,
    API_version_minor: PRODUCT.apiMinor,
    API_version_vendor: 'xapid',
    software_version: softwareVersion(hostname),
    capabilities: xen?.capabilities ?? [],
    sched_policy: 'credit',
    supported_bootloaders: ['pygrub', 'eliloader'],
    other_config: { boot_time: String(Math.floor(Date.now() / 1000 - os.uptime())), agent_start_time: String(Date.now() / 1000) },
    metrics,
  });
  for (const c of cpus) {
    store.create('host_cpu', { host: hostRef, number: c.number, vendor: c.vendor, modelname: c.modelname, speed: c.speed, flags: c.flags, stepping: c.stepping, model: c.model, family: c.family, features: '', utilisation: 0 });
  }
  const poolRef = store.create('pool', { name_label: '', name_description: '', master: hostRef, default_SR: NULL_REF, suspend_image_SR: NULL_REF, crash_dump_SR: NULL_REF });
  const vmMetrics = store.create('VM_metrics', { memory_actual: memory, VCPUs_number: cpus.length, start_time: now(), last_updated: now() });
  store.create('VM', {
    name_label: `Control domain on host: ${hostname}`,
    name_description: 'The domain which manages physical devices and manages other domains',
    is_control_domain: true,
    power_state: 'Running',
    domid: 0,
    resident_on: hostRef,
    affinity: hostRef,
    user_version: 1,
    is_a_template: false,
    ...dom0Memory(memory),
    VCPUs_max: cpus.length,
    VCPUs_at_startup: cpus.length,
    actions_after_shutdown: 'destroy',
    actions_after_reboot: 'destroy',
    actions_after_crash: 'destroy',
    metrics: vmMetrics,
  });
  return { poolRef, hostRef };
}

function refresh(store: ObjectStore, poolRef: string): Identity {
  const hostRef = store.field('pool', poolRef, 'master') as string;
  const host = store.get('host', hostRef)!;
  store.update('host', hostRef, { software_version: softwareVersion(host.hostname as string), address: managementAddress() });
  const metrics = host.metrics as string;
  if (store.exists('host_metrics', metrics)) store.update('host_metrics', metrics, { memory_total: readMemoryTotal(), live: true, last_updated: now() });
  return { poolRef, hostRef };
}
