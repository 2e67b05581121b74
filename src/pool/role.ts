// This host's place in a pool: its role (the master, a slave of a master, or broken)
// and the pool secret that the hosts of one pool share. Both live in small files of the
// state directory. The role is read once at start; a new one is written first and takes
// effect when the daemon restarts (Running.restart in daemon.ts), as in xapi.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { fail } from '../core/errors.js';
import { RequestVerifier } from './auth.js';

export type Role =
  | { kind: 'master' }
  /** `master` is the master's address as written: a host name or IP address, maybe with a port. */
  | { kind: 'slave'; master: string }
  /** The role file could not be read, or a role change failed half-way. */
  | { kind: 'broken' };

export const ROLE_FILE = 'pool-role';
export const SECRET_FILE = 'pool-secret';

/** The calls a broken host still answers: xapi's emergency calls that API 1.1 has. */
const EMERGENCY_CALLS: ReadonlySet<string> = new Set([
  'session.slave_local_login_with_password',
  'session.local_logout',
  'pool.emergency_transition_to_master',
  'pool.emergency_reset_master',
]);

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address (as xapi
 * writes it); undefined when it is none of these. */
export function splitAddress(address: string): { host: string; port?: number } | undefined {
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::([^:]*))?$/.exec(address);
  if (bracketed) {
    [host, port] = [bracketed[1]!, bracketed[2]];
    if (isIP(host) !== 6) return undefined;
  } else if (isIP(address) === 6) {
    host = address;
  } else {
    const i = address.indexOf(':');
    [host, port] = i < 0 ? [address, undefined] : [address.slice(0, i), address.slice(i + 1)];
    const labels = host.split('.');
    // A name whose last label is all digits is a mistyped IPv4 address, not a host name.
    const name = host.length <= 253 && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels.at(-1)!);
    if (isIP(host) !== 4 && !name) return undefined;
  }
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) return undefined;
  return port === undefined ? { host } : { host, port: Number(port) };
}

/** The role a role file's text names, or why it names none. */
export function parseRole(text: string): Role | { error: string } {
  const s = text.trim();
  if (s === 'master') return { kind: 'master' };
  if (s === 'broken') return { kind: 'broken' };
  if (s.startsWith('slave:')) {
    const master = s.slice('slave:'.length);
    return splitAddress(master) ? { kind: 'slave', master } : { error: `"${master.slice(0, 80)}" is not a host name or IP address with an optional port` };
  }
  return { error: `${JSON.stringify(s.slice(0, 80))} is none of master, slave:ADDRESS or broken` };
}

export function formatRole(r: Role): string {
  return r.kind === 'slave' ? `slave:${r.master}` : r.kind;
}

/** Replaces a file all at once: a temporary file is written and synced, then renamed over
 * it, and the directory synced. A kill leaves the old file or the new one, and at worst a
 * stray temporary file that nothing reads. */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, file);
  const dir = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** A secret's form: printable ASCII without spaces, long enough not to be guessed. */
const SECRET_FORM = /^[\x21-\x7e]{32,1024}$/;

export class PoolRole {
  /** Checks the requests other hosts of the pool make (src/http/pool.ts), one per daemon
   * so that a request replayed on another listener is refused too. */
  readonly requests = new RequestVerifier();
  private readonly roleFile: string;
  private readonly secretFile: string;

  private constructor(stateDir: string, readonly role: Role) {
    this.roleFile = path.join(stateDir, ROLE_FILE);
    this.secretFile = path.join(stateDir, SECRET_FILE);
  }

  /** Reads the role: a state directory without a role file is a master's, and says so
   * from now on; one whose file says nothing sensible is broken. A master makes the
   * pool secret at its first start. */
  static load(stateDir: string, log: Logger): PoolRole {
    const file = path.join(stateDir, ROLE_FILE);
    // What a kill left half-written is never read.
    rmSync(`${file}.tmp`, { force: true });
    rmSync(path.join(stateDir, `${SECRET_FILE}.tmp`), { force: true });
    let role: Role;
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        log.error({ file, err: (e as Error).message }, 'the pool role file cannot be read: starting as a broken host, which answers HOST_BROKEN to everything but its emergency calls until the file names a role and xapid restarts');
        return new PoolRole(stateDir, { kind: 'broken' });
      }
    }
    if (text === undefined) {
      role = { kind: 'master' };
      writeAtomic(file, `${formatRole(role)}\n`, 0o644);
    } else {
      const parsed = parseRole(text);
      if ('error' in parsed) {
        log.error({ file }, `the pool role file is not valid (${parsed.error}): starting as a broken host, which answers HOST_BROKEN to everything but its emergency calls until the file names a role and xapid restarts`);
        return new PoolRole(stateDir, { kind: 'broken' });
      }
      role = parsed;
    }
    const pool = new PoolRole(stateDir, role);
    pool.settleSecret(log);
    if (role.kind === 'slave') log.info({ role: role.kind, master: role.master }, `pool role: slave of ${role.master}`);
    else log.info({ role: role.kind }, `pool role: ${role.kind}`);
    return pool;
  }

  /** A master without a secret makes one; a secret file anyone else can read is closed. */
  private settleSecret(log: Logger): void {
    let mode: number | undefined;
    try {
      mode = statSync(this.secretFile).mode & 0o777;
    } catch {
      /* no secret yet */
    }
    if (mode !== undefined && mode !== 0o600) {
      chmodSync(this.secretFile, 0o600);
      log.warn({ file: this.secretFile, mode: mode.toString(8) }, 'the pool secret file was readable by others: made mode 0600');
    }
    if (this.secret() !== undefined) return;
    if (this.role.kind === 'master') {
      writeAtomic(this.secretFile, `${randomBytes(32).toString('hex')}\n`, 0o600);
      log.info({ file: this.secretFile }, 'made the pool secret (mode 0600; it never leaves this file but to join hosts)');
    } else if (this.role.kind === 'slave') {
      log.warn({ file: this.secretFile }, 'this slave has no pool secret: it cannot prove to its master that it belongs to the pool');
    }
  }

  get isMaster(): boolean {
    return this.role.kind === 'master';
  }

  /** The master's address as the role names it, on a slave. */
  get masterAddress(): string | undefined {
    return this.role.kind === 'slave' ? this.role.master : undefined;
  }

  /** The pool secret, or undefined if this host has none. Never log it or answer it. */
  secret(): string | undefined {
    try {
      const s = readFileSync(this.secretFile, 'utf8').trim();
      return SECRET_FORM.test(s) ? s : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes the role that the next start (or Running.restart) takes up, and the pool
   * secret that goes with it when one is given (first, so that a slave never lacks its
   * master's secret). The running role does not change. */
  setRole(next: Role, secret?: string): void {
    if (next.kind === 'slave' && !splitAddress(next.master)) fail('INVALID_VALUE', 'master_address', next.master);
    if (secret !== undefined) {
      // Not echoed: an error message must not carry a secret, even a malformed one.
      if (!SECRET_FORM.test(secret)) throw new Error('a pool secret is 32 to 1024 printable ASCII characters without spaces');
      writeAtomic(this.secretFile, `${secret}\n`, 0o600);
    }
    writeAtomic(this.roleFile, `${formatRole(next)}\n`, 0o644);
  }

  /**
   * The role's say on a call (the session manager asks at every login and session check):
   * a master takes everything; a slave only calls made with a local session (clients are
   * sent to the master with HOST_IS_SLAVE and the address part of the role, keeping their
   * own scheme and port); a broken host only its emergency calls (HOST_BROKEN, as xapi).
   */
  admit(message: string, local: boolean): void {
    const r = this.role;
    if (r.kind === 'master') return;
    if (r.kind === 'broken') {
      if (!EMERGENCY_CALLS.has(message)) fail('HOST_BROKEN');
      return;
    }
    if (!local) fail('HOST_IS_SLAVE', splitAddress(r.master)!.host);
  }
}
