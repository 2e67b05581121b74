// Sessions: records in the `session` table (so they survive a restart, as in xapi),
// with the hot path — checking a session on every call — served from memory.
// last_active is kept in memory and written back at most once a minute per session.
// Every login and every session check first asks the host's pool role whether the call
// may run here at all (RoleGate: src/pool/role.ts decides).
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { ObjectStore } from '../db/store.js';
import { newRef } from '../db/store.js';
import { fail } from '../core/errors.js';
import { formatDateTime, toMillis } from '../core/datetime.js';
import { hashPassword, verifyPassword } from './passwords.js';

export interface SessionInfo {
  ref: string;
  uname: string;
  originator: string;
  lastActive: number;
  /** When last_active was last written to the database. */
  persistedAt: number;
  /** Sessions made by slave_local_login live only in memory. */
  localOnly: boolean;
}

export interface SessionOptions {
  /** Idle time after which a session expires (ms). */
  idleTimeoutMs: number;
  /** Most sessions one user may hold; the oldest idle ones go first. */
  maxPerUser: number;
  /** Pause before answering a failed login (ms). */
  authFailureDelayMs: number;
}

const PERSIST_EVERY_MS = 60_000;

/** What the host's pool role lets through; src/pool/role.ts (PoolRole) is the one. */
export interface RoleGate {
  /** Only a master keeps sessions of its own; elsewhere a session is local or none. */
  readonly isMaster: boolean;
  /** Throws what a call of `message` gets on this host unless its role lets it through;
   * `local` says whether the call's session is (or the login makes) a local-only one. */
  admit(message: string, local: boolean): void;
}

const LOGIN = 'session.login_with_password';
const LOCAL_LOGIN = 'session.slave_local_login_with_password';

export class SessionManager {
  private readonly live = new Map<string, SessionInfo>();
  /** Keyed MACs of credentials that scrypt has already accepted, so that a client
   * logging in again does not pay for a full key derivation each time. The key lives
   * only in this process; a password change empties the set. */
  private readonly verified = new Set<string>();
  /** Key derivations under way: concurrent logins with the same credentials share one
   * instead of each running scrypt (1,000 clients at once would otherwise queue 1,000). */
  private readonly pending = new Map<string, Promise<boolean>>();
  /** Bumped by a password change, so that a derivation started before it caches nothing. */
  private generation = 0;
  private readonly macKey = randomBytes(32);
  private readonly hostRef: () => string;

  constructor(private readonly store: ObjectStore, private readonly opts: SessionOptions, hostRef: () => string, private readonly role: RoleGate) {
    this.hostRef = hostRef;
    // The sessions of a master end when it becomes anything else: they were the pool's.
    if (!role.isMaster) this.dropStored();
    const rows = store.db.prepare('SELECT s.ref, s.last_active, a.uname, a.originator FROM "session" s JOIN "_session_auth" a ON a.ref = s.ref').all() as
      Array<{ ref: string; last_active: string; uname: string; originator: string }>;
    for (const r of rows) {
      const t = parseStamp(r.last_active);
      this.live.set(r.ref, { ref: r.ref, uname: r.uname, originator: r.originator, lastActive: t, persistedAt: t, localOnly: false });
    }
  }

  hasPassword(uname: string): boolean {
    return this.store.db.prepare('SELECT 1 FROM "_passwords" WHERE uname = ?').get(uname) !== undefined;
  }

  private mac(uname: string, password: string): string {
    return createHmac('sha256', this.macKey).update(uname).update('\0').update(password).digest('base64');
  }

  async setPassword(uname: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    this.generation++;
    this.verified.clear();
    this.pending.clear();
    this.store.db.prepare('INSERT INTO "_passwords" (uname, hash) VALUES (?, ?) ON CONFLICT(uname) DO UPDATE SET hash = excluded.hash').run(uname, hash);
  }

  async checkPassword(uname: string, password: string): Promise<boolean> {
    const mac = this.mac(uname, password);
    if (this.verified.has(mac)) return true;
    let check = this.pending.get(mac);
    if (!check) {
      const generation = this.generation;
      check = (async () => {
        const row = this.store.db.prepare('SELECT hash FROM "_passwords" WHERE uname = ?').get(uname) as { hash: string } | undefined;
        const ok = row ? await verifyPassword(password, row.hash) : false;
        if (ok && generation === this.generation) this.verified.add(mac);
        return ok;
      })().finally(() => {
        if (this.pending.get(mac) === check) this.pending.delete(mac);
      });
      this.pending.set(mac, check);
    }
    return check;
  }

  private dropStored(): void {
    this.store.tx(() => {
      for (const ref of this.store.all('session')) this.store.destroy('session', ref);
      this.store.db.prepare('DELETE FROM "_session_auth"').run();
    });
  }

  /** Checks credentials (unless trusted, as on the local socket) and opens a session. */
  async login(uname: string, password: string, originator: string, opts: { trusted: boolean; localOnly?: boolean }): Promise<string> {
    // Interim, until calls on the local socket are carried to the master: away from the
    // master, the socket's password-less login makes a local-only session.
    const localOnly = !!opts.localOnly || (opts.trusted && !this.role.isMaster);
    // Before the password: a client sent elsewhere learns where, whatever it typed.
    this.role.admit(opts.localOnly ? LOCAL_LOGIN : LOGIN, localOnly);
    if (!opts.trusted && !(await this.checkPassword(uname, password))) {
      await new Promise((r) => setTimeout(r, opts.localOnly ? 0 : this.opts.authFailureDelayMs));
      fail('SESSION_AUTHENTICATION_FAILED', uname, 'Authentication failure');
    }
    if (opts.trusted && !this.hasPassword(uname)) fail('SESSION_AUTHENTICATION_FAILED', uname, 'No such user');
    const ref = newRef();
    const t = Date.now();
    const info: SessionInfo = { ref, uname, originator, lastActive: t, persistedAt: t, localOnly };
    if (!info.localOnly) {
      this.store.tx(() => {
        this.store.create('session', {
          uuid: randomUUID(), this_host: this.hostRef(), last_active: formatDateTime(new Date(t)), pool: false,
        }, ref);
        this.store.db.prepare('INSERT INTO "_session_auth" (ref, uname, originator) VALUES (?, ?, ?)').run(ref, uname, originator);
      });
    }
    this.live.set(ref, info);
    this.enforceLimit(uname);
    return ref;
  }

  /** The session behind a call of `message`; the pool role's refusal, or SESSION_INVALID
   * if unknown or expired. */
  check(ref: unknown, message: string): SessionInfo {
    const s = typeof ref === 'string' ? this.live.get(ref) : undefined;
    this.role.admit(message, s?.localOnly ?? false);
    // Echo only a scalar: String() of a deeply nested array would overflow the stack.
    if (!s) fail('SESSION_INVALID', typeof ref === 'object' && ref !== null ? '' : ref);
    const t = Date.now();
    if (t - s.lastActive > this.opts.idleTimeoutMs) {
      this.destroy(s.ref);
      fail('SESSION_INVALID', ref);
    }
    s.lastActive = t;
    if (!s.localOnly && t - s.persistedAt > PERSIST_EVERY_MS) this.persist(s);
    return s;
  }

  private persist(s: SessionInfo): void {
    s.persistedAt = s.lastActive;
    if (this.store.exists('session', s.ref)) {
      this.store.update('session', s.ref, { last_active: formatDateTime(new Date(s.lastActive)) });
    }
  }

  private readonly endListeners: Array<(ref: string) => void> = [];

  /** Called whenever a session ends: logout, expiry or the per-user limit. */
  onEnd(listener: (ref: string) => void): void {
    this.endListeners.push(listener);
  }

  destroy(ref: string): void {
    const s = this.live.get(ref);
    this.live.delete(ref);
    if (s) for (const l of this.endListeners) l(ref);
    if (!s || s.localOnly) return;
    this.store.tx(() => {
      if (this.store.exists('session', ref)) this.store.destroy('session', ref);
      this.store.db.prepare('DELETE FROM "_session_auth" WHERE ref = ?').run(ref);
    });
  }

  isLocalOnly(ref: string): boolean {
    return this.live.get(ref)?.localOnly ?? false;
  }

  /** Current last_active of a session, as the record should show it. */
  lastActive(ref: string): number | undefined {
    return this.live.get(ref)?.lastActive;
  }

  private enforceLimit(uname: string): void {
    const mine = [...this.live.values()].filter((s) => s.uname === uname && !s.localOnly);
    if (mine.length <= this.opts.maxPerUser) return;
    mine.sort((a, b) => a.lastActive - b.lastActive);
    for (const s of mine.slice(0, mine.length - this.opts.maxPerUser)) this.destroy(s.ref);
  }

  /** Drops expired sessions and writes back last_active; run periodically. */
  sweep(): void {
    const t = Date.now();
    for (const s of [...this.live.values()]) {
      if (t - s.lastActive > this.opts.idleTimeoutMs) this.destroy(s.ref);
      else if (!s.localOnly && s.lastActive > s.persistedAt) this.persist(s);
    }
  }

  count(): number {
    return this.live.size;
  }
}

function parseStamp(s: string): number {
  return toMillis(s) ?? Date.now();
}
