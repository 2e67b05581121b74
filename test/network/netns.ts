// Network namespaces made by the tests themselves. Every `ip` command here runs inside
// a namespace this file created (`ip -n NAME`), except `ip netns add/delete` of those
// very names and `ip netns list/pids`, which only read; the host's own interfaces are
// never touched.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { argvOf, isScriptFork } from '../../src/network/udhcpc.js';

export interface TestLink {
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, any>; info_slave_kind?: string };
}


/** Set where the kernel is known to have every feature the tests use (the Xen image's
 * dom0, test/xen/): a missing feature then fails the tests instead of narrowing them. */
export const NEED_KERNEL = process.env.XAPID_TESTS_NEED_KERNEL === '1';

export class TestNamespace {
  private deleted = false;

  private constructor(readonly name: string) {}

  /** Makes a fresh namespace (a random xapidt-… name unless given one), or returns
   * undefined where the rights are lacking. */
  static create(name = `xapidt-${randomBytes(5).toString('hex')}`): TestNamespace | undefined {
    try {
      execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
    } catch (e) {
      if (NEED_KERNEL) throw e;
      return undefined;
    }
    const ns = new TestNamespace(name);
    ns.ip('link', 'set', 'dev', 'lo', 'up');
    return ns;
  }

  /** `ip -n NAME ARGS…` → stdout. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs a command inside the namespace (`ip netns exec`), e.g. tc or cat of sysfs. */
  exec(...argv: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** A stand-in NIC: one end of a veth pair, with the alias xapid treats as physical.
   * The peer (NAME-p) stays here; it is up unless `carrier` is false. */
  addNic(name: string, opts: { mac?: string; carrier?: boolean; mtu?: number } = {}): void {
    this.addVeth(name, `${name}-p`);
    const attrs = ['alias', 'xapid:nic'];
    if (opts.mac) attrs.push('address', opts.mac);
    if (opts.mtu) attrs.push('mtu', String(opts.mtu));
    this.ip('link', 'set', 'dev', name, ...attrs);
    if (opts.carrier !== false) this.ip('link', 'set', 'dev', `${name}-p`, 'up');
  }

  /** A veth pair: `name` here, `peer` here too or in another namespace the test made. */
  addVeth(name: string, peer: string, peerNs?: TestNamespace): void {
    this.ip('link', 'add', 'name', name, 'type', 'veth', 'peer', 'name', peer, ...(peerNs ? ['netns', peerNs.name] : []));
  }

  /** Moves one of this namespace's links into another namespace the test made. */
  moveLink(name: string, to: TestNamespace): void {
    this.ip('link', 'set', 'dev', name, 'netns', to.name);
  }

  /** The busybox udhcpc clients running on `bridge` in this namespace. */
  dhcpClients(bridge: string): number[] {
    return this.pids().filter((pid) => {
      const argv = argvOf(pid);
      // A client's own short-lived fork for its event script is not a second client.
      return argv.includes('udhcpc') && argv[argv.indexOf('-i') + 1] === bridge && !isScriptFork(pid, argv);
    });
  }

  /** The PIDs of the processes running in this namespace (`ip netns pids`). */
  pids(): number[] {
    return execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  }

  links(): Map<string, TestLink> {
    const list = JSON.parse(this.ip('-j', '-d', 'link', 'show')) as TestLink[];
    return new Map(list.map((l) => [l.ifname, l]));
  }

  link(name: string): TestLink | undefined {
    return this.links().get(name);
  }

  /** `ip -d link show dev NAME` as text (what a person would look at). */
  detail(name: string): string {
    return this.ip('-d', 'link', 'show', 'dev', name);
  }

  addresses(dev: string): string[] {
    const list = JSON.parse(this.ip('-j', '-4', 'addr', 'show', 'dev', dev)) as Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>;
    return (list[0]?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
  }

  /** Names, kinds and masters of every link: enough to see that nothing changed. */
  topology(): string[] {
    return [...this.links().values()].map((l) => `${l.ifname} ${l.linkinfo?.info_kind ?? '-'} ${l.master ?? '-'}`).sort();
  }

  /** Whether the kernel can make a link of this kind here (probed on a scratch link). */
  supports(kind: 'vlan' | 'bond' | 'bridge'): boolean {
    const probe = `p${randomBytes(3).toString('hex')}`;
    try {
      if (kind === 'vlan') {
        this.ip('link', 'add', 'name', probe, 'type', 'veth', 'peer', 'name', `${probe}p`);
        try {
          this.ip('link', 'add', 'link', probe, 'name', `${probe}.9`, 'type', 'vlan', 'id', '9');
          return true;
        } finally {
          this.ip('link', 'delete', 'dev', probe);
        }
      }
      this.ip('link', 'add', 'name', probe, 'type', kind);
      this.ip('link', 'delete', 'dev', probe);
      return true;
    } catch (e) {
      if (NEED_KERNEL) throw new Error(`XAPID_TESTS_NEED_KERNEL is set but this kernel cannot make ${kind} devices: ${(e as Error).message}`);
      return false;
    }
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'pipe' });
  }
}

export function namespaceExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`) || existsSync(`/var/run/netns/${name}`);
}

/** The names `ip netns list` shows. */
export function namespaceNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}
