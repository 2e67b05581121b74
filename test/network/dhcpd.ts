// A real DHCP server for the tests: Debian's dnsmasq (package dnsmasq-base), DHCP only,
// inside a namespace the test made, on the interfaces it is given. Started as the
// test's own child and stopped by its PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { TestNamespace } from './netns.js';

export interface Subnet {
  /** The server's interface (it must have an address in the subnet). */
  dev: string;
  /** First and last address handed out, /24. */
  range: [string, string];
  router?: string;
  dns?: string[];
}

export const hasDnsmasq = existsSync('/usr/sbin/dnsmasq');

export class TestDhcpServer {
  private constructor(
    private readonly proc: ChildProcess,
    private readonly leaseFile: string,
    private readonly exited: Promise<void>,
    readonly log: string[],
  ) {}

  /** Starts dnsmasq and resolves once it says it has started. */
  static async start(ns: TestNamespace, subnets: Subnet[], dir: string): Promise<TestDhcpServer> {
    const leaseFile = path.join(dir, 'dnsmasq.leases');
    const args = [
      '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--bind-interfaces', '--user=root',
      '--no-ping', '--log-facility=-', `--dhcp-leasefile=${leaseFile}`, '--pid-file=',
    ];
    subnets.forEach((s, i) => {
      args.push(`--interface=${s.dev}`, `--dhcp-range=set:n${i},${s.range[0]},${s.range[1]},255.255.255.0,2m`);
      if (s.router) args.push(`--dhcp-option=tag:n${i},option:router,${s.router}`);
      if (s.dns) args.push(`--dhcp-option=tag:n${i},option:dns-server,${s.dns.join(',')}`);
    });
    // (`ip netns exec` execs dnsmasq: the child's PID is dnsmasq's.)
    const proc = spawn('ip', ['netns', 'exec', ns.name, 'dnsmasq', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log: string[] = [];
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      for (const s of [proc.stdout!, proc.stderr!]) {
        createInterface({ input: s }).on('line', (line) => {
          log.push(line);
          if (/started, version/.test(line)) resolve();
        });
      }
      void exited.then(() => reject(new Error(`dnsmasq exited:\n${log.join('\n')}`)));
    });
    return new TestDhcpServer(proc, leaseFile, exited, log);
  }

  /** The lease file's lines: expiry, MAC, IP, name, client id. */
  leases(): string[] {
    try {
      return readFileSync(this.leaseFile, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    await this.exited;
  }
}

/** An IPv4 address as a number, for range checks. */
export function ipNumber(ip: string): number {
  return ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
}

/** Waits, without a deadline of its own, until `cond` holds (the test's timeout bounds it). */
export async function until(cond: () => boolean | Promise<boolean>, pauseMs = 100): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, pauseMs));
}
