// The one place that runs iproute2 (`ip`, and `tc` for VIF rate limits) and reads
// the kernel's per-interface facts. Every command has a timeout; a failure becomes
// an IpError with a coarse kind that callers map to a XenAPI error. In namespace mode
// every command is confined to the daemon's namespace (`ip -n NAME`, `ip netns exec`).
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

export type IpFailureKind =
  | 'exists' // the object is already there
  | 'missing' // no such device / address / route
  | 'unsupported' // the kernel lacks the link type or feature (no 8021q, no bonding…)
  | 'denied' // no rights (CAP_NET_ADMIN)
  | 'busy' // device or resource busy
  | 'invalid' // the kernel or ip refused an argument
  | 'timeout'
  | 'no-tool' // ip/tc not installed
  | 'other';

export class IpError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly kind: IpFailureKind,
    readonly detail: string,
  ) {
    super(`${argv.join(' ')}: ${detail}`);
    this.name = 'IpError';
  }
}

export function classify(stderr: string): IpFailureKind {
  if (/File exists/i.test(stderr)) return 'exists';
  if (/Unknown device type|Operation not supported|not supported|Unknown link type/i.test(stderr)) return 'unsupported';
  if (/Cannot find device|does not exist|No such device|Cannot find|No such file|not found|Cannot assign/i.test(stderr)) return 'missing';
  if (/Operation not permitted|Permission denied|EPERM/i.test(stderr)) return 'denied';
  if (/Device or resource busy|EBUSY/i.test(stderr)) return 'busy';
  if (/Invalid argument|Error: argument|Garbage|invalid|Numerical result out of range|Error:/i.test(stderr)) return 'invalid';
  return 'other';
}

/** One interface as `ip -j -d link show` reports it. */
export interface Link {
  name: string;
  index: number;
  mac: string;
  /** The hardware address before a bond changed it, where the kernel reports one. */
  permMac?: string;
  mtu: number;
  /** Administratively up. */
  up: boolean;
  /** The kernel sees a carrier (LOWER_UP). */
  carrier: boolean;
  kind?: string;
  slaveKind?: string;
  master?: string;
  alias?: string;
  /** The lower device of a VLAN or the peer of a veth, when it is in this namespace. */
  link?: string;
  vlanId?: number;
  bondMode?: string;
}

/** Facts from /sys/class/net/<dev>: what `ip` does not say. */
export interface SysFacts {
  speed?: number;
  duplexFull?: boolean;
  carrier?: boolean;
  vendorId?: string;
  deviceId?: string;
  /** Target of the `device` link, e.g. ../../../0000:00:19.0; absent for virtual devices. */
  busPath?: string;
}

export interface IpAddress {
  address: string;
  prefixlen: number;
  dynamic: boolean;
}

export interface LinkAttrs {
  up?: boolean;
  master?: string;
  nomaster?: boolean;
  mtu?: number;
  mac?: string;
  alias?: string;
}

export interface IpRunnerOptions {
  /** Confine every command to this named network namespace. */
  netns?: string;
  timeoutMs?: number;
  log?: Logger;
}

interface RunResult {
  stdout: string;
}

function run(file: string, argv: string[], timeoutMs: number, input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, argv, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string };
      const full = [file, ...argv];
      if (e.code === 'ENOENT') return reject(new IpError(full, 'no-tool', `${file} is not installed`));
      if (e.killed || e.signal === 'SIGKILL') return reject(new IpError(full, 'timeout', `no answer within ${timeoutMs} ms`));
      const text = String(stderr || e.message).trim();
      reject(new IpError(full, classify(text), text));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const SPLIT = '--- xapid sysfs ---';

/** Arguments of one `ip link set` changing several attributes at once. */
export function setLinkArgs(name: string, a: LinkAttrs): string[] {
  const argv = ['link', 'set', 'dev', name];
  if (a.nomaster) argv.push('nomaster');
  if (a.mtu !== undefined) argv.push('mtu', String(a.mtu));
  if (a.mac !== undefined) argv.push('address', a.mac);
  // (for `ip -batch`, which reads quoted words: an empty alias is "")
  if (a.alias !== undefined) argv.push('alias', a.alias === '' ? '""' : a.alias);
  if (a.master !== undefined) argv.push('master', a.master);
  if (a.up !== undefined) argv.push(a.up ? 'up' : 'down');
  return argv;
}

function parseLinks(out: string): Map<string, Link> {
  const list = JSON.parse(out.trim() || '[]') as Array<Record<string, any>>;
  const links = new Map<string, Link>();
  for (const j of list) {
    const flags = (j.flags ?? []) as string[];
    const info = (j.linkinfo ?? {}) as Record<string, any>;
    const link: Link = {
      name: j.ifname,
      index: j.ifindex,
      mac: String(j.address ?? '').toLowerCase(),
      mtu: j.mtu,
      up: flags.includes('UP'),
      carrier: flags.includes('LOWER_UP'),
    };
    if (j.permaddr) link.permMac = String(j.permaddr).toLowerCase();
    if (info.info_kind) link.kind = info.info_kind;
    if (info.info_slave_kind) link.slaveKind = info.info_slave_kind;
    if (j.master) link.master = j.master;
    if (j.ifalias) link.alias = j.ifalias;
    if (typeof j.link === 'string') link.link = j.link;
    if (info.info_kind === 'vlan' && info.info_data) link.vlanId = info.info_data.id;
    if (info.info_kind === 'bond' && info.info_data) link.bondMode = info.info_data.mode;
    links.set(link.name, link);
  }
  return links;
}

function parseFacts(stdout: string): Map<string, SysFacts> {
  const out = new Map<string, SysFacts>();
  for (const line of stdout.split('\n')) {
    if (!line) continue;
    const [name, speed, duplex, carrier, vendor, device, busPath] = line.split('\t');
    const f: SysFacts = {};
    const s = Number.parseInt(speed ?? '', 10);
    if (Number.isFinite(s) && s > 0) f.speed = s;
    if (duplex) f.duplexFull = duplex.trim() === 'full';
    if (carrier === '0' || carrier === '1') f.carrier = carrier === '1';
    if (vendor) f.vendorId = vendor.trim().replace(/^0x/, '');
    if (device) f.deviceId = device.trim().replace(/^0x/, '');
    if (busPath) f.busPath = busPath.trim();
    out.set(name!, f);
  }
  return out;
}

// The sysfs facts of every interface, as one line per device: name, speed, duplex,
// carrier, PCI vendor, PCI device, device link. Read-only; unreadable files (speed of
// a down link) print nothing.
const SYSFS_SCRIPT = [
  'cd /sys/class/net 2>/dev/null || exit 0',
  'for d in *; do',
  '  [ -e "$d" ] || continue',
  '  s=; x=; c=; v=; i=; b=',
  '  read -r s < "$d/speed" 2>/dev/null; read -r x < "$d/duplex" 2>/dev/null; read -r c < "$d/carrier" 2>/dev/null',
  '  if [ -e "$d/device" ]; then read -r v < "$d/device/vendor" 2>/dev/null; read -r i < "$d/device/device" 2>/dev/null; b=$(cd -P "$d/device" 2>/dev/null && pwd -P); fi',
  '  printf "%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n" "$d" "$s" "$x" "$c" "$v" "$i" "$b"',
  'done',
].join('\n');

export class IpRunner {
  readonly netns?: string;
  readonly timeoutMs: number;
  private readonly log?: Logger;

  constructor(opts: IpRunnerOptions = {}) {
    this.netns = opts.netns;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.log = opts.log;
  }

  /** A runner for another namespace (or the host's, with undefined), same settings. */
  inNamespace(netns: string | undefined): IpRunner {
    return new IpRunner({ netns, timeoutMs: this.timeoutMs, log: this.log });
  }

  /** `ip [-n NS] ARGS…`; resolves to stdout. */
  async ip(...args: string[]): Promise<string> {
    const argv = this.netns ? ['-n', this.netns, ...args] : args;
    this.log?.debug({ cmd: ['ip', ...argv].join(' ') }, 'ip');
    return (await run('ip', argv, this.timeoutMs)).stdout;
  }

  /** `tc ARGS…` in the namespace. */
  async tc(...args: string[]): Promise<string> {
    const [file, argv] = this.netns ? ['ip', ['netns', 'exec', this.netns, 'tc', ...args]] : ['tc', args];
    this.log?.debug({ cmd: [file, ...argv].join(' ') }, 'tc');
    return (await run(file, argv, this.timeoutMs)).stdout;
  }

  // ---- namespaces (host-level commands: only ever on names the caller owns) ----

  static async netnsAdd(name: string, timeoutMs = 10_000): Promise<void> {
    await run('ip', ['netns', 'add', name], timeoutMs);
  }

  static async netnsDelete(name: string, timeoutMs = 10_000): Promise<void> {
    await run('ip', ['netns', 'delete', name], timeoutMs);
  }

  // ---- reads ----------------------------------------------------------------

  async links(): Promise<Map<string, Link>> {
    return parseLinks(await this.ip('-j', '-d', 'link', 'show'));
  }

  /** Links and sysfs facts in one process (namespace entry costs more than the reads). */
  async state(): Promise<{ links: Map<string, Link>; facts: Map<string, SysFacts> }> {
    const script = `ip -j -d link show && echo '${SPLIT}' && { ${SYSFS_SCRIPT}
}`;
    const [file, argv] = this.netns ? ['ip', ['netns', 'exec', this.netns, 'sh', '-c', script]] : ['sh', ['-c', script]];
    this.log?.debug({ cmd: 'links and sysfs facts' }, 'ip');
    const { stdout } = await run(file, argv, this.timeoutMs);
    const i = stdout.indexOf(SPLIT);
    return { links: parseLinks(stdout.slice(0, i)), facts: parseFacts(stdout.slice(i + SPLIT.length)) };
  }

  /** Global IPv4 addresses of every interface. */
  async allAddresses(): Promise<Map<string, IpAddress[]>> {
    const out = await this.ip('-j', '-4', 'addr', 'show');
    const list = JSON.parse(out || '[]') as Array<{ ifname: string; addr_info?: Array<Record<string, any>> }>;
    const map = new Map<string, IpAddress[]>();
    for (const l of list) {
      map.set(l.ifname, (l.addr_info ?? [])
        .filter((a) => a.family === 'inet' && a.scope === 'global')
        .map((a) => ({ address: a.local, prefixlen: a.prefixlen, dynamic: Boolean(a.dynamic) })));
    }
    return map;
  }

  async addresses(dev: string): Promise<IpAddress[]> {
    return (await this.allAddresses()).get(dev) ?? [];
  }

  async defaultGateway(): Promise<{ gateway: string; dev: string } | undefined> {
    const out = await this.ip('-j', '-4', 'route', 'show', 'default');
    const list = JSON.parse(out || '[]') as Array<{ gateway?: string; dev?: string }>;
    const r = list.find((x) => x.gateway);
    return r ? { gateway: r.gateway!, dev: r.dev ?? '' } : undefined;
  }

  /** /sys/class/net facts for every interface of the namespace (or the host). */
  async sysFacts(): Promise<Map<string, SysFacts>> {
    const [file, argv] = this.netns ? ['ip', ['netns', 'exec', this.netns, 'sh', '-c', SYSFS_SCRIPT]] : ['sh', ['-c', SYSFS_SCRIPT]];
    return parseFacts((await run(file, argv, this.timeoutMs)).stdout);
  }

  /** Several `ip` commands in one process (`ip -batch -`); stops at the first failure,
   * whose error names the command (with `force`, runs them all and fails at the end). */
  async batch(lines: string[][], force = false): Promise<void> {
    if (lines.length === 0) return;
    const argv = [...(this.netns ? ['-n', this.netns] : []), ...(force ? ['-force'] : []), '-batch', '-'];
    // One word per argument: a name with blanks, quotes or a newline would change the command.
    for (const line of lines) {
      const bad = line.find((w) => w === '' || (/[\s"'\\#]/.test(w) && w !== '""'));
      if (bad !== undefined) throw new IpError(['ip', ...line], 'invalid', `refusing an unsafe argument ${JSON.stringify(bad)}`);
    }
    const text = lines.map((l) => l.join(' ')).join('\n') + '\n';
    this.log?.debug({ cmd: `ip ${argv.join(' ')}`, lines: lines.map((l) => l.join(' ')) }, 'ip');
    try {
      await run('ip', argv, this.timeoutMs, text);
    } catch (e) {
      // "Command failed -:N" names the line: report that command instead.
      if (!(e instanceof IpError)) throw e;
      const n = Number(/Command failed -:(\d+)/.exec(e.detail)?.[1]);
      const line = lines[n - 1];
      if (!line) throw e;
      const detail = e.detail.replace(/\s*Command failed -:\d+/g, '').trim();
      throw new IpError(['ip', ...(this.netns ? ['-n', this.netns] : []), ...line], e.kind, `${detail} (ip ${line.join(' ')})`);
    }
  }

  // ---- writes (link and address changes go through batch(); see host.ts) ----

  /** Rate limit a device's transmit side (toward the guest for a VIF backend). */
  async setRateLimit(dev: string, kbps: number): Promise<void> {
    const burst = Math.max(Math.ceil((kbps * 1000) / 8 / 10), 1600); // ~100 ms of traffic, at least one MTU
    await this.tc('qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${kbps}kbit`, 'burst', `${burst}b`, 'latency', '50ms');
  }

  async clearRateLimit(dev: string): Promise<void> {
    try {
      await this.tc('qdisc', 'del', 'dev', dev, 'root');
    } catch (e) {
      // Nothing to remove is fine: the device had the default qdisc.
      if (!(e instanceof IpError) || (e.kind !== 'missing' && e.kind !== 'invalid' && e.kind !== 'other')) throw e;
    }
  }
}
