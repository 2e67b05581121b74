// How the hosts of a pool prove to each other that they hold the pool secret, without
// ever sending it: each request carries an HMAC-SHA256, keyed with the secret, over its
// method, path, a timestamp, a fresh nonce and a hash of its body; the answer carries an
// HMAC over the request's nonce and the answer's body, so the caller knows it reached a
// host of its own pool. A request outside the time window, or whose nonce was seen
// within it, is refused: a captured request cannot be played again.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const AUTH_HEADER = 'x-xapid-pool-auth';
/** How far a request's clock may be from ours, either way. */
export const WINDOW_MS = 60_000;

const sha256 = (body: Buffer | string) => createHash('sha256').update(body).digest('hex');
const mac = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export interface SignedRequest {
  header: string;
  nonce: string;
}

/** The auth header of a request from this host. */
export function signRequest(secret: string, method: string, path: string, body: Buffer | string = '', now = Date.now()): SignedRequest {
  const nonce = randomBytes(16).toString('hex');
  const sig = mac(secret, `${method.toUpperCase()}\n${path}\n${now}\n${nonce}\n${sha256(body)}`);
  return { header: `v1 ${now} ${nonce} ${sig}`, nonce };
}

/** The auth header of an answer to the request that carried `nonce`. */
export function signAnswer(secret: string, nonce: string, body: Buffer | string): string {
  return mac(secret, `answer\n${nonce}\n${sha256(body)}`);
}

export function answerIsGenuine(secret: string, nonce: string, body: Buffer | string, header: string | undefined): boolean {
  return typeof header === 'string' && sameHex(header, signAnswer(secret, nonce, body));
}

export type Verdict = { ok: true; nonce: string } | { ok: false; why: string };

/** Checks requests; remembers the nonces of the time window to refuse replays. */
export class RequestVerifier {
  private readonly seen = new Map<string, number>();

  verify(secret: string | undefined, method: string, path: string, body: Buffer | string, header: unknown, now = Date.now()): Verdict {
    if (!secret) return { ok: false, why: 'this host has no pool secret' };
    if (typeof header !== 'string') return { ok: false, why: 'no pool authentication' };
    const m = /^v1 (\d{1,15}) ([0-9a-f]{32}) ([0-9a-f]{64})$/.exec(header);
    if (!m) return { ok: false, why: 'malformed pool authentication' };
    const [, ts, nonce, sig] = m as unknown as [string, string, string, string];
    if (Math.abs(now - Number(ts)) > WINDOW_MS) return { ok: false, why: 'pool authentication outside the time window' };
    if (!sameHex(sig, mac(secret, `${method.toUpperCase()}\n${path}\n${ts}\n${nonce}\n${sha256(body)}`))) {
      return { ok: false, why: 'pool authentication does not match this pool\'s secret' };
    }
    this.forgetOld(now);
    if (this.seen.has(nonce)) return { ok: false, why: 'pool request replayed' };
    this.seen.set(nonce, now);
    return { ok: true, nonce };
  }

  private forgetOld(now: number): void {
    // Map order is insertion order, which is time order here.
    for (const [nonce, at] of this.seen) {
      if (now - at <= 2 * WINDOW_MS) break;
      this.seen.delete(nonce);
    }
  }
}
