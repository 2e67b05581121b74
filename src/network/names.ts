// Names and addresses: bridge and device naming and order, MAC addresses (validation,
// generation from a VM's mac_seed, random locally administered ones) and IPv4
// address/netmask checks.
import { createHash, randomBytes } from 'node:crypto';

/** Linux's limit on an interface name (IFNAMSIZ - 1). */
export const IFNAME_MAX = 15;

/** A name the kernel accepts for an interface: 1–15 chars, no '/', ':', whitespace, not "." or "..". */
export function validIfName(name: string): boolean {
  return name.length > 0 && name.length <= IFNAME_MAX && !/[\s/:]/.test(name) && name !== '.' && name !== '..' && /^[\x21-\x7e]+$/.test(name);
}

function shortHash(s: string, n: number): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

/** Device names in natural order: eth2 before eth10. */
export const natural = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/** The bridge of a NIC's own network: ethN → xenbrN, any other device D → brD. */
export function bridgeForDevice(device: string): string {
  const m = /^eth(\d+)$/.exec(device);
  if (m) return `xenbr${m[1]}`;
  const name = `br${device}`;
  return name.length <= IFNAME_MAX ? name : `brx${shortHash(device, IFNAME_MAX - 3)}`;
}

/** The network's name for a NIC found on the host. */
export function networkLabelForDevice(device: string): string {
  return `Pool-wide network associated with ${device}`;
}

/** The 802.1Q device of a VLAN: `<device>.<tag>` when it fits, else a stable short form. */
export function vlanDeviceName(device: string, tag: number): string {
  const name = `${device}.${tag}`;
  if (name.length <= IFNAME_MAX) return name;
  const suffix = `.${tag}`;
  return `v${shortHash(device, IFNAME_MAX - 1 - suffix.length)}${suffix}`;
}

// ---- MAC addresses -------------------------------------------------------------

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Six pairs of hex digits separated by colons. */
export function validMac(mac: string): boolean {
  return MAC_RE.test(mac);
}

export function formatMac(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Makes the first byte a locally administered unicast one (bit 1 set, bit 0 clear). */
function localUnicast(bytes: Uint8Array): Uint8Array {
  bytes[0] = (bytes[0]! | 0x02) & 0xfe;
  return bytes;
}

/** The MAC xapi derives from a VM's `other_config:mac_seed` for a VIF device number:
 * MD5 chained 2·device+1 times over the seed, four bytes of that and two of its MD5. */
export function macFromSeed(seed: string, device: number): string {
  let h: Buffer = Buffer.from(seed, 'utf8');
  for (let i = 0; i < 2 * device + 1; i++) h = createHash('md5').update(h).digest();
  const h2 = createHash('md5').update(h).digest();
  const bytes = new Uint8Array([h[0]!, h[1]!, h[2]!, h[3]!, h2[1]!, h2[2]!]);
  return formatMac(localUnicast(bytes));
}

/** A random locally administered unicast MAC not in `taken` (lower case). */
export function randomMac(taken: ReadonlySet<string>): string {
  for (;;) {
    const mac = formatMac(localUnicast(new Uint8Array(randomBytes(6))));
    if (!taken.has(mac)) return mac;
  }
}

// ---- IPv4 ------------------------------------------------------------------------

/** A dotted-quad IPv4 address (no leading zeros, each part 0–255). */
export function validIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

function toInt(s: string): number {
  return s.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** The prefix length of a dotted netmask, or undefined when its one-bits are not contiguous. */
export function prefixOfNetmask(mask: string): number | undefined {
  if (!validIPv4(mask)) return undefined;
  const n = toInt(mask);
  const inverted = (~n >>> 0) & 0xffffffff;
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  let bits = 0;
  for (let v = n; v & 0x80000000; v = (v << 1) >>> 0) bits++;
  return bits;
}

export function netmaskOfPrefix(prefix: number): string {
  const n = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

/** The host interface name of a VIF's backend, as Xen's netback names it. */
export function vifBackendName(domid: number, device: string): string {
  return `vif${domid}.${device}`;
}
