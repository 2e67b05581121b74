// Shared by the pool tests: a state directory prepared with a role (and a secret), and a
// caller that keeps the raw text of every answer, so a test can search them all.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROLE_FILE, SECRET_FILE } from '../../src/pool/role.js';
import { tempDir } from '../helpers/daemon.js';
import { rawCall, type Answer, type Protocol, type Target } from '../rpc/wire.js';

/** Made up: the documentation range of RFC 5737, with a port clients must not be given. */
export const MASTER = '192.0.2.10:8443';
export const MASTER_HOST = '192.0.2.10';
export const BAD_SESSION = 'OpaqueRef:00000000-0000-0000-0000-00000000dead';

/** A state directory whose role file (and secret file) a test wrote, as the join will. */
export function preparedStateDir(role: string | Buffer, secret?: string): string {
  const dir = tempDir('xapid-pool-');
  writeFileSync(path.join(dir, ROLE_FILE), role);
  if (secret !== undefined) writeFileSync(path.join(dir, SECRET_FILE), `${secret}\n`, { mode: 0o600 });
  return dir;
}

export class Recorder {
  /** Every answer body, as it came. */
  readonly texts: string[] = [];

  async call(target: Target, proto: Protocol, method: string, params: unknown[]): Promise<Answer> {
    const { answer, text } = await rawCall(target, proto, method, params);
    this.texts.push(text);
    return answer;
  }

  async value(target: Target, proto: Protocol, method: string, params: unknown[]): Promise<any> {
    const a = await this.call(target, proto, method, params);
    if (!a.ok) throw new Error(`${method} failed: ${JSON.stringify(a.error)}`);
    return a.value;
  }
}
