// A network of real xapid hosts for the pool tests: each host a separate xapid process
// in a network namespace of its own, with its own address, its own state directory and
// the simulator driver, every one on the same port, as a pool of real hosts would be.
//
// Every name below is a network namespace this file makes (BASE = xapidpool-<the test
// process's PID>-<X>-<Y>); nothing is ever added to the machine's own namespace:
//
//   BASE-sw   the switch: bridge br0 with one port per member (h0, h1, …, cl)
//   BASE-h<i> host i (0-based): eth0 = 10.X.Y.(10+i)/24, the other end of port h<i>;
//             its xapid listens on 10.X.Y.(10+i):PORT and on <stateDir>/xapi.sock
//   BASE-cl   the client: eth0 = 10.X.Y.200/24, where real clients (python3, node) run
//
// No namespace has a route beyond its /24 and the switch is linked to nothing else, so
// nothing sent inside can leave: the addresses mean something only inside these
// namespaces, and two pools (even on the same subnet) never see each other.
//
// THE TEST PROCESS ITSELF IS IN THE MACHINE'S NAMESPACE: it must never connect to a
// host's address or url (that would go out of the machine's default route). It reaches
// a host over the host's Unix socket (`host.local`, the state directory is on the shared
// filesystem; use test/rpc/wire.ts's call/value/loginAt with it), or over TCP through a
// member of the pool: `net.client.call(host, …)`, `net.hosts[0].call(host, …)`, or a
// program run inside a namespace (`net.exec`, `member.exec`, `member.spawn`).
//
// Ending: `destroy()` stops every process the pool started, by PID (SIGTERM, then
// SIGKILL after a grace period), and deletes every namespace it made. If the test
// process dies without it (even by SIGKILL), the daemons stop by themselves
// (XAPID_EXIT_WITH_PARENT), the agents when their stdin closes, and a guard process
// (its own process group, started by create) sees its pipe close, kills whatever
// still runs inside the pool's namespaces (a paused daemon, a client) by PID and
// deletes the namespaces. Always call destroy (in an after hook): a live daemon keeps
// the test process from exiting.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ROOT_PASSWORD, startDaemon, stopProcess, tempDir, type DaemonOptions, type TestDaemon } from './daemon.js';
import type { AgentAsk, AgentReply } from './pool-agent.js';
import { NEED_KERNEL, TestNamespace, namespaceNames } from '../network/netns.js';
import type { Answer, Protocol, Target } from '../rpc/wire.js';

const AGENT = fileURLToPath(new URL('./pool-agent.js', import.meta.url));
/** The repository (where node_modules is): the working directory of programs run inside. */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PREFIX = 'xapidpool-';
const BRIDGE = 'br0';
const NIC = 'eth0';
const CLIENT_OCTET = 200;
/** Time a process gets to exit after SIGTERM before it is sent SIGKILL. */
const GRACE_MS = 10_000;

export interface HostOptions {
  /** More daemon arguments (after the harness's own). */
  args?: string[];
  env?: Record<string, string>;
  /** Default 60 s. */
  readyTimeoutMs?: number;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  /** Default: the repository. */
  cwd?: string;
  /** The program is sent SIGKILL (by PID) past this; default 60 s. */
  timeoutMs?: number;
  input?: string;
}

/** One machine on the pool's network: a namespace with an address on the bridge. */
export class PoolMember {
  private agent?: { proc: ChildProcess; pending: Map<number, (r: AgentReply) => void>; next: number };

  constructor(
    protected readonly net: PoolNet,
    readonly ns: TestNamespace,
    /** Its port on the switch (in the switch namespace). */
    readonly port: string,
    readonly address: string,
  ) {}

  /** `ip netns exec NS argv…` as argv (ip execs the program: its PID is the program's). */
  command(argv: string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns.name, ...argv];
  }

  /** Starts a program inside this namespace (stopped by destroy if still running). */
  spawn(argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const [cmd, ...args] = this.command(argv);
    const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...opts.env };
    const proc = spawn(cmd!, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], ...opts, env });
    this.net.track(proc);
    return proc;
  }

  /** Runs a program inside this namespace to its end. A non-zero exit is not an error:
   * look at `code`. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const proc = this.spawn(argv, { env: opts.env, cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout!.on('data', (d: Buffer) => out.push(d));
    proc.stderr!.on('data', (d: Buffer) => err.push(d));
    proc.stdin!.end(opts.input);
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    return new Promise((resolve, reject) => {
      proc.once('error', reject);
      proc.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
    });
  }

  /** A XenAPI call over TCP from this namespace to a host's address (XML-RPC on /,
   * JSON-RPC 2.0 on /jsonrpc). Throws if no answer came (code ETIMEDOUT, ECONNREFUSED…). */
  async call(to: PoolHost, proto: Protocol, method: string, params: unknown[], timeoutMs = 30_000): Promise<Answer> {
    const r = await this.ask({ op: 'call', url: to.url, proto, method, params, timeoutMs });
    if (!r.ok) throw Object.assign(new Error(`${method} from ${this.address} to ${to.url}: ${r.message}`), { code: r.code });
    return r.answer!;
  }

  /** The value of a call that must succeed. */
  async value(to: PoolHost, proto: Protocol, method: string, params: unknown[]): Promise<any> {
    const a = await this.call(to, proto, method, params);
    if (!a.ok) throw new Error(`${method} at ${to.url} failed: ${JSON.stringify(a.error)}`);
    return a.value;
  }

  /** Logs in as root over TCP (JSON-RPC, or XML-RPC) and returns the session ref. */
  login(to: PoolHost, proto: Protocol = 'json'): Promise<string> {
    return this.value(to, proto, 'session.login_with_password', ['root', ROOT_PASSWORD, '1.1', 'xapid-tests']);
  }

  /** Whether a TCP connection from here to a member's address (or an address of the
   * pool's subnet) and the pool's port opens within timeoutMs. */
  async reaches(to: PoolMember | string, timeoutMs = 1500): Promise<boolean> {
    const host = typeof to === 'string' ? this.net.checkAddress(to) : to.address;
    const r = await this.ask({ op: 'connect', host, port: this.net.port, timeoutMs });
    if (!r.ok && r.code === 'EAGENT') throw new Error(r.message);
    return r.ok;
  }

  /** Waits until reaches(to) holds (after linkUp, say); throws past timeoutMs. */
  async waitReaches(to: PoolMember | string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.reaches(to, 1000))) {
      if (Date.now() > deadline) throw new Error(`${this.address} does not reach ${typeof to === 'string' ? to : to.address} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Ends the agent (closes its stdin; SIGKILL by PID if it lingers). */
  async stopAgent(): Promise<void> {
    const a = this.agent;
    this.agent = undefined;
    if (!a) return;
    a.proc.stdin!.end();
    await stopProcess(a.proc, undefined, undefined, 2000);
  }

  /** The agent (pool-agent.ts) of this namespace, started on first use and kept. */
  private async ask(req: AgentAsk): Promise<AgentReply> {
    if (!this.agent) {
      const proc = this.spawn([process.execPath, AGENT]);
      const pending = new Map<number, (r: AgentReply) => void>();
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        const r = JSON.parse(line) as AgentReply;
        pending.get(r.id)?.(r);
        pending.delete(r.id);
      });
      const stderr: string[] = [];
      proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
      // A write after it died is answered by the exit below, not an EPIPE crash.
      proc.stdin!.on('error', () => undefined);
      const agent = { proc, pending, next: 1 };
      proc.once('exit', (code, signal) => {
        if (this.agent === agent) this.agent = undefined;
        for (const [id, settle] of pending) settle({ id, ok: false, code: 'EAGENT', message: `the agent in ${this.ns.name} exited (${code ?? signal}): ${stderr.join('')}` });
        pending.clear();
      });
      this.agent = agent;
    }
    const a = this.agent;
    const id = a.next++;
    return new Promise((resolve) => {
      a.pending.set(id, resolve);
      a.proc.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }
}

/** A host of the pool: its namespace, address, state directory and (when started) its
 * xapid process. */
export class PoolHost extends PoolMember {
  /** The current process, while one runs. */
  daemon?: TestDaemon;
  private lastOptions: HostOptions = {};
  private paused = false;

  constructor(net: PoolNet, ns: TestNamespace, port: string, address: string, readonly index: number, readonly stateDir: string) {
    super(net, ns, port, address);
  }

  /** http://ADDRESS:PORT: for programs inside the pool's namespaces only, never the test process. */
  get url(): string {
    return this.net.port === 80 ? `http://${this.address}` : `http://${this.address}:${this.net.port}`;
  }

  /** The local-administration socket: reachable from the test process. */
  get socket(): string {
    return path.join(this.stateDir, 'xapi.sock');
  }

  /** A test/rpc/wire.ts Target for calls over the Unix socket. */
  get local(): Target {
    return { socket: this.socket };
  }

  get running(): boolean {
    const p = this.daemon?.proc;
    return Boolean(p && p.exitCode === null && p.signalCode === null);
  }

  /** The daemon's PID (the node process itself). */
  get pid(): number {
    if (!this.running) throw new Error(`host ${this.index} is not running`);
    return this.daemon!.proc.pid!;
  }

  /** Every log line of the current (or last) process. */
  get logs(): string[] {
    return this.daemon?.logs ?? [];
  }

  /** Starts xapid here and waits for "xapid ready". The options are kept for restart. */
  async start(opts: HostOptions = this.lastOptions): Promise<this> {
    if (this.running) throw new Error(`host ${this.index} is already running (PID ${this.pid})`);
    this.lastOptions = opts;
    this.paused = false;
    const d: DaemonOptions = {
      stateDir: this.stateDir,
      netns: this.ns.name,
      listen: `${this.address}:${this.net.port}`,
      socket: true,
      args: ['--driver', 'sim', '--sim-delay-scale', '0', '--network-mode', 'none', ...(opts.args ?? [])],
      env: opts.env,
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
    };
    this.daemon = await startDaemon(d);
    return this;
  }

  /** Signals the daemon by its PID and waits for it to exit (SIGKILL after graceMs).
   * A paused daemon is continued so that it can act on the signal. Resolves to the exit
   * code (null when a signal ended it). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = GRACE_MS): Promise<number | null> {
    const d = this.daemon;
    if (!d || !this.running) return d?.proc.exitCode ?? null;
    const done = d.stop(signal, graceMs);
    if (this.paused && signal !== 'SIGKILL' && signal !== 'SIGSTOP') d.proc.kill('SIGCONT');
    this.paused = false;
    return done;
  }

  /** Stops the daemon and starts it again on the same state directory (and options,
   * unless new ones are given). */
  async restart(opts?: HostOptions): Promise<this> {
    await this.stop();
    return this.start(opts);
  }

  /** SIGSTOP: the process stays, its sockets stay open, nothing answers. */
  pause(): void {
    process.kill(this.pid, 'SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT after pause. */
  resume(): void {
    process.kill(this.pid, 'SIGCONT');
    this.paused = false;
  }
}

export interface PoolNetOptions {
  /** The port every host listens on (default 80, as a real host). */
  port?: number;
  /** Keep the state directories after destroy (default: removed). */
  keepState?: boolean;
}

export class PoolNet {
  readonly hosts: PoolHost[] = [];
  /** The directory holding each host's state directory (h0, h1, …). */
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();
  private readonly made: TestNamespace[] = [];
  private guard?: ChildProcess;
  private destroyed = false;
  private clientMember?: PoolMember;

  private constructor(
    readonly base: string,
    /** The first three octets, e.g. "10.37.142". */
    readonly prefix: string,
    readonly port: number,
    private readonly keepState: boolean,
    readonly switchNs: TestNamespace,
  ) {
    this.made.push(switchNs);
    this.dir = tempDir('xapid-pooltest-');
    this.startGuard();
  }

  /** The client namespace's member, where real clients run. */
  get client(): PoolMember {
    return this.clientMember!;
  }

  /** Makes the switch, n host namespaces and the client namespace (nothing runs yet: see
   * startHosts). Undefined where namespaces or bridges cannot be made (unless the
   * kernel is required to have them, XAPID_TESTS_NEED_KERNEL=1: then it throws). */
  static create(n: number, opts: PoolNetOptions = {}): PoolNet | undefined {
    if (n < 1 || n > 100) throw new Error(`a pool of ${n} hosts?`);
    const [x, y] = freeSubnet();
    const base = `${PREFIX}${process.pid}-${x}-${y}`;
    const sw = TestNamespace.create(`${base}-sw`);
    if (!sw) return undefined;
    if (!sw.supports('bridge')) {
      sw.delete();
      return undefined;
    }
    const net = new PoolNet(base, `10.${x}.${y}`, opts.port ?? 80, opts.keepState ?? false, sw);
    try {
      net.clientMember = net.member('cl', CLIENT_OCTET, (ns, port, address) => new PoolMember(net, ns, port, address));
      sw.ip('link', 'add', 'name', BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
      sw.ip('link', 'set', 'dev', BRIDGE, 'up');
      for (let i = 0; i < n; i++) {
        const dir = path.join(net.dir, `h${i}`);
        net.hosts.push(net.member(`h${i}`, 10 + i, (ns, port, address) => new PoolHost(net, ns, port, address, i, dir)));
      }
      net.plug(net.client);
      for (const h of net.hosts) net.plug(h);
    } catch (e) {
      net.destroyed = true;
      net.removeNamespaces();
      throw e;
    }
    return net;
  }

  /** Every namespace this pool made, the switch first. */
  get namespaces(): string[] {
    return this.made.map((ns) => ns.name);
  }

  /** "10.X.Y.0/24" */
  get subnet(): string {
    return `${this.prefix}.0/24`;
  }

  /** Starts xapid on every host (all at once) and waits until each is ready. */
  async startHosts(opts: HostOptions = {}): Promise<PoolHost[]> {
    await Promise.all(this.hosts.map((h) => h.start(opts)));
    return this.hosts;
  }

  /** Runs a program in the client namespace (see PoolMember.exec). */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.client.exec(argv, opts);
  }

  /** Starts a program in the client namespace (see PoolMember.spawn). */
  spawnClient(argv: string[], opts?: SpawnOptions): ChildProcess {
    return this.client.spawn(argv, opts);
  }

  /** Cuts a member off the switch. By default its cable stays in (the port leaves the
   * bridge: the member still has a carrier, like a switch that drops its traffic);
   * carrier: false pulls the cable instead (the port goes down, the member sees no
   * carrier). Either way nothing passes between it and the others. */
  linkDown(member: PoolMember | number, opts: { carrier?: boolean } = {}): void {
    const m = this.memberOf(member);
    if (opts.carrier === false) this.switchNs.ip('link', 'set', 'dev', m.port, 'down');
    else this.switchNs.ip('link', 'set', 'dev', m.port, 'nomaster');
  }

  /** Undoes linkDown (either kind). As on a real network, a connection tried in the
   * first seconds after may still fail (EHOSTUNREACH) while an address lookup (ARP)
   * begun during the cut runs out: wait with member.waitReaches. */
  linkUp(member: PoolMember | number): void {
    this.switchNs.ip('link', 'set', 'dev', this.memberOf(member).port, 'master', BRIDGE, 'up');
  }

  /** Stops everything this pool started, by PID, and deletes its namespaces (and,
   * unless keepState, the state directories). Throws at the end if something was left
   * inside a namespace that the pool did not start itself (killed by PID all the same). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    let strays: string[];
    try {
      await Promise.all(this.hosts.map((h) => h.stop()));
      await Promise.all([this.client, ...this.hosts].map((m) => m.stopAgent()));
      await Promise.all([...this.children].map((p) => stopProcess(p, undefined, 'SIGTERM', GRACE_MS)));
    } finally {
      strays = this.removeNamespaces();
    }
    if (strays.length) throw new Error(`processes the pool did not start itself were left in its namespaces (killed): ${strays.join(', ')}`);
  }

  /** Kills (SIGKILL, by PID) whatever still runs in the pool's namespaces, deletes them,
   * ends the guard and removes the state directories; returns what it had to kill. */
  private removeNamespaces(): string[] {
    const strays: string[] = [];
    for (const ns of this.made) {
      for (const pid of ns.pids()) {
        strays.push(`${pid} (${ns.name})`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
      ns.delete();
    }
    this.guard?.stdin?.end();
    if (!this.keepState) rmSync(this.dir, { recursive: true, force: true });
    return strays;
  }

  /** @internal A process started inside one of the namespaces, stopped by destroy. */
  track(proc: ChildProcess): void {
    if (this.destroyed) {
      proc.kill('SIGKILL');
      throw new Error('the pool is destroyed');
    }
    this.children.add(proc);
    proc.once('exit', () => this.children.delete(proc));
  }

  /** @internal An address that must be on the pool's subnet (traffic stays inside). */
  checkAddress(address: string): string {
    const m = /^(\d+\.\d+\.\d+)\.(\d+)$/.exec(address);
    if (!m || m[1] !== this.prefix || Number(m[2]) < 1 || Number(m[2]) > 254) throw new Error(`${address} is not on the pool's subnet ${this.subnet}`);
    return address;
  }

  private member<M extends PoolMember>(suffix: string, octet: number, make: (ns: TestNamespace, port: string, address: string) => M): M {
    const ns = TestNamespace.create(`${this.base}-${suffix}`);
    if (!ns) throw new Error(`could not make the namespace ${this.base}-${suffix}`);
    this.made.push(ns);
    return make(ns, suffix, `${this.prefix}.${octet}`);
  }

  /** A veth pair from the member's eth0 to a port of the bridge. */
  private plug(m: PoolMember): void {
    this.switchNs.addVeth(m.port, NIC, m.ns);
    this.switchNs.ip('link', 'set', 'dev', m.port, 'master', BRIDGE, 'up');
    m.ns.ip('addr', 'add', `${m.address}/24`, 'dev', NIC);
    m.ns.ip('link', 'set', 'dev', NIC, 'up');
  }

  private memberOf(m: PoolMember | number): PoolMember {
    if (typeof m !== 'number') return m;
    const h = this.hosts[m];
    if (!h) throw new Error(`no host ${m} in a pool of ${this.hosts.length}`);
    return h;
  }

  /** Waits on its stdin, which closes when the test process ends however it ends; then
   * kills by PID whatever still runs in the pool's namespaces, deletes them and the
   * state directories (unless keepState). After destroy it finds none and just exits. Its own process group: signals meant
   * for the test's group do not reach it. */
  private startGuard(): void {
    const script = [
      "trap '' INT TERM HUP",
      'read _',
      'for ns in $(ip netns list | cut -d" " -f1); do',
      '  case "$ns" in "$1"-*)',
      '    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done',
      '    ip netns delete "$ns" 2>/dev/null ;;',
      '  esac',
      'done',
      '[ -z "$2" ] || rm -rf -- "$2"',
    ].join('\n');
    const guard = spawn('sh', ['-c', script, 'xapid-pool-guard', this.base, this.keepState ? '' : this.dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    guard.unref();
    (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.guard = guard;
  }
}

/** X, Y for 10.X.Y.0/24, not used by another pool on this machine (not needed for
 * isolation, each pool is its own network; it keeps an address unique to one run). */
function freeSubnet(): [number, number] {
  const used = new Set(namespaceNames().filter((n) => n.startsWith(PREFIX)).map((n) => n.split('-').slice(2, 4).join('-')));
  for (;;) {
    const x = randomInt(1, 255);
    const y = randomInt(0, 256);
    if (!used.has(`${x}-${y}`)) return [x, y];
  }
}

/** The inode of a pool namespace, as /proc/PID/ns/net names it ("net:[INODE]"). */
export function namespaceInode(name: string): string {
  return `net:[${statSync(`/run/netns/${name}`).ino}]`;
}
