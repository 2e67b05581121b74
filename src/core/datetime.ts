// XenAPI datetimes travel as `YYYYMMDDTHH:MM:SSZ` (UTC); that string is also how
// the daemon stores them.

const WIRE = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function formatDateTime(d: Date): string {
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`;
}

export function now(): string {
  return formatDateTime(new Date());
}

/** Milliseconds since the epoch of a datetime in any accepted form. */
export function toMillis(s: string): number | undefined {
  const d = parseDateTime(s);
  if (!d) return undefined;
  return Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(12, 14), +d.slice(15, 17));
}

/** Accepts the wire form with or without dashes and zone (none means UTC); undefined if invalid. */
export function parseDateTime(s: string): string | undefined {
  const m = WIRE.exec(s.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se, zone] = m;
  let ms = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +se!);
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    ms -= sign * (+digits.slice(0, 2) * 60 + +digits.slice(2)) * 60_000;
  }
  return Number.isNaN(ms) ? undefined : formatDateTime(new Date(ms));
}
