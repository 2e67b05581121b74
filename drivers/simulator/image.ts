// The files the simulator's save and dump-core write: a suspend image is one line of
// JSON holding what the guest needs to resume (its memory and VCPU sizes, boot
// progress, last console lines and its agent's xenstore keys); a core dump is a short
// text.
import { readFileSync, writeFileSync } from 'node:fs';
import { DriverError } from '../driver.js';
import { cpuTime, type SimDomain } from './state.js';

const IMAGE_MAGIC = 'xapid-simulator-suspend-image-v1';

export interface SuspendImage {
  magic: string;
  uuid: string;
  hvm: boolean;
  memoryBytes: number;
  maxMemoryBytes: number;
  vcpus: number;
  maxVcpus: number;
  cpuTimeSec: number;
  bootLeftMs: number;
  agentUp: boolean;
  console?: string[];
  /** The guest's own xenstore keys (data/, attr/), relative to its domain path. */
  guest: Record<string, string>;
  savedAt: string;
}

/** `guest` is the domain's xenstore listing; only the keys the guest wrote itself are kept. */
export function writeImage(path: string, d: SimDomain, guest: Record<string, string>): void {
  const kept = Object.fromEntries(Object.entries(guest).filter(([k]) => k.startsWith('data/') || k.startsWith('attr/')));
  const image: SuspendImage = {
    magic: IMAGE_MAGIC, uuid: d.uuid, hvm: d.hvm, memoryBytes: d.memoryBytes, maxMemoryBytes: d.maxMemoryBytes,
    vcpus: d.vcpus, maxVcpus: d.maxVcpus, cpuTimeSec: cpuTime(d), bootLeftMs: d.bootLeftMs, agentUp: d.agentUp,
    console: d.console.slice(-50), guest: kept, savedAt: new Date().toISOString(),
  };
  writeFileSync(path, `${JSON.stringify(image)}\n`);
}

/** Reads a suspend image and checks that it is one of this simulator's, for the VM `uuid`. */
export function readImage(path: string, uuid: string, command: string): SuspendImage {
  let image: SuspendImage;
  try {
    image = JSON.parse(readFileSync(path, 'utf8').split(/[\n\0]/)[0]!);
  } catch (e) {
    throw new DriverError('failed', `cannot read the suspend image: ${(e as Error).message}`, { command });
  }
  if (image.magic !== IMAGE_MAGIC) throw new DriverError('failed', 'not a suspend image of this simulator', { command });
  if (image.uuid !== uuid) throw new DriverError('invalid', `the image belongs to ${image.uuid}, not ${uuid}`, { command });
  return image;
}

export function writeCore(path: string, d: SimDomain): void {
  writeFileSync(path, `simulated core of domain ${d.domid} (${d.uuid})\nstate: ${d.state}\nmemory: ${d.memoryBytes}\nconsole:\n${d.console.join('\n')}\n`);
}
