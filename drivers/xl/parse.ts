// Reading what xl and the xenstore tools print.
import type { DomainInfo, ShutdownReason } from '../driver.js';

const MiB = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Xen's SHUTDOWN_* codes, as `xl list -v` prints them (hex). */
export const REASONS: ShutdownReason[] = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'];

export interface ListedDomain {
  name: string;
  domid: number;
  memoryBytes: number;
  vcpus: number;
  state: DomainInfo['state'];
  shutdownReason?: ShutdownReason;
  cpuTimeSec: number;
  uuid: string;
}

/** The State column (`r-----`, `--p---`, `---sc-`…) and reason code as a state. */
export function domainState(flags: string, reasonHex: string | undefined): { state: DomainInfo['state']; reason?: ShutdownReason } {
  const has = (i: number, c: string) => flags[i] === c;
  const code = reasonHex && reasonHex !== '-' ? Number.parseInt(reasonHex, 16) : undefined;
  const reason = code === undefined ? undefined : REASONS[code] ?? 'unknown';
  if (has(5, 'd')) return { state: 'dying', reason };
  if (has(4, 'c')) return { state: 'crashed', reason: 'crash' };
  if (has(3, 's')) return { state: reason === 'crash' ? 'crashed' : 'shutdown', reason: reason ?? 'unknown' };
  if (has(2, 'p')) return { state: 'paused' };
  return { state: 'running' };
}

/** `xl list -v`: Name ID Mem VCPUs State Time(s) UUID Reason-Code [Security Label]. */
export function parseXlListVerbose(text: string): ListedDomain[] {
  const out: ListedDomain[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    const u = t.findIndex((x) => UUID.test(x));
    if (u < 6) continue;
    const [id, mem, vcpus, flags, time] = t.slice(u - 5, u);
    if (!/^\d+$/.test(id!) || !/^[-rbpscd]{6}$/.test(flags!)) continue;
    const { state, reason } = domainState(flags!, t[u + 1]);
    out.push({
      name: t.slice(0, u - 5).join(' '),
      domid: Number(id),
      memoryBytes: Number(mem) * MiB,
      vcpus: Number(vcpus),
      state,
      shutdownReason: reason,
      cpuTimeSec: Number(time) || 0,
      uuid: t[u]!.toLowerCase(),
    });
  }
  return out;
}

/** `xl info`: "key : value" lines. */
export function parseXlInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s*:\s*(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

/** One domain's entry in `xl list -l` (JSON). */
export interface LongDomain {
  domid: number;
  config: {
    c_info?: { type?: string; name?: string; uuid?: string };
    b_info?: { max_vcpus?: number; max_memkb?: number; target_memkb?: number; type?: string };
  };
}

export function parseXlListLong(text: string): LongDomain[] {
  const t = text.trim();
  if (!t) return [];
  const v = JSON.parse(t) as LongDomain[] | LongDomain;
  return Array.isArray(v) ? v : [v];
}

/** Undoes xenstore-ls's escaping of a value (\\, \", \n, \t, \xNN and octal). */
export function unescapeXs(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return ({ n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v' } as Record<string, string>)[e] ?? e;
  });
}

/** `xenstore-ls -f PATH`: "/full/path = "value"" lines, as paths relative to PATH. */
export function parseXenstoreLs(text: string, base: string): Record<string, string> {
  const out: Record<string, string> = {};
  const prefix = base.endsWith('/') ? base : `${base}/`;
  for (const line of text.split('\n')) {
    const m = /^(\/\S*) = "(.*)"\s*$/.exec(line);
    if (!m) continue;
    const p = m[1]!;
    if (!p.startsWith(prefix)) continue;
    out[p.slice(prefix.length)] = unescapeXs(m[2]!);
  }
  return out;
}
