// Facts about the machine xapid runs on, read from /proc and the OS.
import { readFileSync, existsSync } from 'node:fs';
import os from 'node:os';

export interface CpuFacts {
  number: number;
  vendor: string;
  modelname: string;
  speed: number;
  flags: string;
  stepping: string;
  model: number;
  family: number;
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** One entry per logical CPU in /proc/cpuinfo (falls back to os.cpus()). */
export function readCpus(text = read('/proc/cpuinfo')): CpuFacts[] {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  if (blocks.length === 0) {
    return os.cpus().map((c, i) => ({ number: i, vendor: '', modelname: c.model, speed: c.speed, flags: '', stepping: '', model: 0, family: 0 }));
  }
  return blocks.map((b) => {
    const kv = new Map<string, string>();
    for (const line of b.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) kv.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
    }
    return {
      number: Number.parseInt(kv.get('processor') ?? '0', 10),
      vendor: kv.get('vendor_id') ?? '',
      modelname: kv.get('model name') ?? '',
      speed: Math.round(Number.parseFloat(kv.get('cpu MHz') ?? '0')) || 0,
      flags: kv.get('flags') ?? '',
      stepping: kv.get('stepping') ?? '',
      model: Number.parseInt(kv.get('model') ?? '0', 10) || 0,
      family: Number.parseInt(kv.get('cpu family') ?? '0', 10) || 0,
    };
  });
}

/** Total memory in bytes, from /proc/meminfo (kB) or the OS. */
export function readMemoryTotal(text = read('/proc/meminfo')): number {
  const m = /^MemTotal:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : os.totalmem();
}

/** The address other machines would reach this host at: the first non-loopback IPv4. */
export function managementAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Xen's version and capabilities when running on Xen (dom0), else undefined. */
export function readXen(): { version: string; capabilities: string[] } | undefined {
  if (!existsSync('/sys/hypervisor/type') || read('/sys/hypervisor/type').trim() !== 'xen') return undefined;
  const v = (p: string) => read(`/sys/hypervisor/version/${p}`).trim();
  return {
    version: `${v('major')}.${v('minor')}${v('extra')}`,
    capabilities: read('/sys/hypervisor/properties/capabilities').trim().split(/\s+/).filter(Boolean),
  };
}
