// What xapid knows of busybox's udhcpc, the DHCP client that dhcp.ts runs one of per
// bridge: the event script it calls, the lease file that script writes, and how to
// recognise its processes in /proc (a client may have outlived the xapid that started it).
import { readFileSync, readdirSync } from 'node:fs';
import { prefixOfNetmask, validIPv4 } from './names.js';

/** A DHCP client's last word, from its .lease file. */
export interface Lease {
  /** bound: the bridge holds `ip`; none: no lease (not yet, or lost); failed: a round of
   * discovery went unanswered (the client keeps asking). */
  state: 'bound' | 'none' | 'failed';
  ip: string;
  prefixlen: number;
  router: string;
  dns: string[];
  seconds: number;
  server: string;
}

// udhcpc runs this at each event ($1) with the lease in its environment (ip, mask as a
// prefix length, broadcast, router, dns, lease, serverid). Lifetimes on the address make
// the kernel mark it dynamic, which is how the rest of xapid tells a lease from a static
// address; an infinite lease is kept one second short of "forever" for that reason.
export const EVENT_SCRIPT = `#!/bin/sh
# Written by xapid (src/network/udhcpc.ts) at each start: udhcpc's event script.
dir=$XAPID_DHCP_DIR
report() {
	{
		echo "state=$1"
		if [ "$1" = bound ]; then
			printf 'ip=%s\\nmask=%s\\nsubnet=%s\\nrouter=%s\\ndns=%s\\nlease=%s\\nserverid=%s\\n' \\
				"$ip" "$mask" "$subnet" "$router" "$dns" "$lease" "$serverid"
		fi
	} > "$dir/.$interface.lease" && mv -f "$dir/.$interface.lease" "$dir/$interface.lease"
}
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface" dynamic
	[ "$XAPID_DEFAULT_ROUTE" = 1 ] && ip -4 route del default dev "$interface" 2>/dev/null
	report none
	;;
bound|renew)
	lft=\${lease:-3600}
	[ "$lft" -ge 4294967295 ] 2>/dev/null && lft=4294967294
	# A new lease may bring a new address: other leased ones go.
	ip -4 -o addr show dev "$interface" dynamic | while read -r _ _ _ a _; do
		[ "$a" = "$ip/$mask" ] || ip -4 addr del "$a" dev "$interface"
	done
	ip -4 addr replace "$ip/$mask" broadcast "\${broadcast:-+}" dev "$interface" valid_lft "$lft" preferred_lft "$lft"
	if [ "$XAPID_DEFAULT_ROUTE" = 1 ] && [ -n "$router" ]; then
		set -- $router
		ip -4 route replace default via "$1" dev "$interface"
	fi
	report bound
	;;
leasefail)
	report failed
	;;
esac
exit 0
`;

/** udhcpc's settings: three discovers 3 s apart, then 10 s of rest, for ever; release on exit. */
export const UDHCPC_ARGS = ['-f', '-R', '-t', '3', '-T', '3', '-A', '10'];

export function parseLease(text: string): Lease | undefined {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const state = kv.get('state');
  const none: Lease = { state: 'none', ip: '', prefixlen: 0, router: '', dns: [], seconds: 0, server: '' };
  if (state === 'none' || state === 'failed') return { ...none, state };
  if (state !== 'bound') return undefined;
  const ip = kv.get('ip') ?? '';
  const mask = Number(kv.get('mask'));
  const prefixlen = /^\d+$/.test(kv.get('mask') ?? '') && mask <= 32 ? mask : prefixOfNetmask(kv.get('subnet') ?? '');
  if (!validIPv4(ip) || prefixlen === undefined) return undefined;
  const router = (kv.get('router') ?? '').split(/\s+/).find(validIPv4) ?? '';
  const dns = (kv.get('dns') ?? '').split(/\s+/).filter(validIPv4);
  const seconds = Number(kv.get('lease'));
  return { state, ip, prefixlen, router, dns, seconds: Number.isFinite(seconds) ? seconds : 0, server: kv.get('serverid') ?? '' };
}

/** A udhcpc process running xapid's event script from `script`. */
export interface Found {
  pid: number;
  bridge: string;
  defaultRoute: boolean;
}

export function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

const after = (argv: string[], flag: string) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};

/** The parent of pid, from /proc/PID/stat (its fourth field, after the command in parentheses). */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** A process that udhcpc forked to run its event script still has udhcpc's command line
 * until it execs the shell: it is part of its parent, not a second client. */
export function isScriptFork(pid: number, argv = argvOf(pid)): boolean {
  const parent = parentOf(pid);
  return parent !== undefined && parent > 1 && argvOf(parent).join('\0') === argv.join('\0');
}

/** Whether pid is (still) a client of `script` on `bridge`: checked before any signal,
 * since a PID may have been reused. */
export function isClient(pid: number, script: string, bridge?: string): boolean {
  const argv = argvOf(pid);
  return argv.includes('udhcpc') && after(argv, '-s') === script && (bridge === undefined || after(argv, '-i') === bridge) && !isScriptFork(pid, argv);
}

/** Every client of `script` running now, in any namespace. */
export function findClients(script: string): Found[] {
  const out: Found[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || !isClient(pid, script)) continue;
    let env = '';
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    out.push({ pid, bridge: after(argvOf(pid), '-i') ?? '', defaultRoute: env.split('\0').includes('XAPID_DEFAULT_ROUTE=1') });
  }
  return out;
}

/** Alive and not a zombie. */
export function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
