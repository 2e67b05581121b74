// The role file and the pool secret on their own (src/pool/role.ts): what a fresh state
// directory gets, round trips through setRole, what counts as garbage, and that a write
// cut short by a kill leaves the old role or the new one, never a torn file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { PoolRole, ROLE_FILE, SECRET_FILE, parseRole, splitAddress } from '../../src/pool/role.js';
import { XenApiError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/daemon.js';

/** A logger whose lines (parsed) land in `lines`. */
function memoryLog(): { log: pino.Logger; lines: any[] } {
  const lines: any[] = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }), lines };
}

function withDir(t: { after(fn: () => void): void }): string {
  const dir = tempDir('xapid-role-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function errorOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof XenApiError) return e.description;
    return ['Error', (e as Error).message];
  }
  return ['no error'];
}

test('addresses: host names, IPv4 and IPv6 with or without a port; anything else is refused', () => {
  assert.deepEqual(splitAddress('10.0.0.1'), { host: '10.0.0.1' });
  assert.deepEqual(splitAddress('10.0.0.1:8443'), { host: '10.0.0.1', port: 8443 });
  assert.deepEqual(splitAddress('master.example.org:80'), { host: 'master.example.org', port: 80 });
  assert.deepEqual(splitAddress('[fd00::1]:443'), { host: 'fd00::1', port: 443 });
  assert.deepEqual(splitAddress('[fd00::1]'), { host: 'fd00::1' });
  assert.deepEqual(splitAddress('fd00::1'), { host: 'fd00::1' });
  for (const bad of ['', ':80', 'host:', 'host:0', 'host:65536', 'host:80:81', 'a b', 'host/x', '-host', '999.1.1.1', '10.0.0', '[nothost]:80', 'x'.repeat(300)]) {
    assert.equal(splitAddress(bad), undefined, bad);
  }
});

test('role text: master, broken, slave:ADDRESS (surrounding blanks ignored); the rest is garbage', () => {
  assert.deepEqual(parseRole('master\n'), { kind: 'master' });
  assert.deepEqual(parseRole('  broken '), { kind: 'broken' });
  assert.deepEqual(parseRole('slave:10.0.0.1:8443\n'), { kind: 'slave', master: '10.0.0.1:8443' });
  for (const bad of ['', 'Master', 'slave', 'slave:', 'slave:not an address', 'master\nslave:x', '{"role":"master"}', '\u0000\u00ff']) {
    assert.ok('error' in parseRole(bad), JSON.stringify(bad));
  }
});

test('a fresh state directory is a master: the role file says so, and the secret is made, mode 0600', (t) => {
  const dir = withDir(t);
  const { log, lines } = memoryLog();
  const r = PoolRole.load(dir, log);
  assert.deepEqual(r.role, { kind: 'master' });
  assert.equal(r.isMaster, true);
  assert.equal(r.masterAddress, undefined);
  assert.equal(readFileSync(path.join(dir, ROLE_FILE), 'utf8'), 'master\n');
  const secret = r.secret()!;
  assert.match(secret, /^[0-9a-f]{64}$/);
  assert.equal(statSync(path.join(dir, SECRET_FILE)).mode & 0o777, 0o600);
  // The next start keeps the same secret.
  assert.equal(PoolRole.load(dir, log).secret(), secret);
  assert.ok(!JSON.stringify(lines).includes(secret), 'the secret is never logged');
  r.admit('VM.start', false);
  r.admit('session.login_with_password', false);
});

test('setRole writes the next role (and a secret given with it); load reads them back', (t) => {
  const dir = withDir(t);
  const { log } = memoryLog();
  const first = PoolRole.load(dir, log);
  const secret = 'f'.repeat(40);
  first.setRole({ kind: 'slave', master: 'master.example:8443' }, secret);
  // The running role is the one this run started with.
  assert.deepEqual(first.role, { kind: 'master' });
  assert.equal(readFileSync(path.join(dir, ROLE_FILE), 'utf8'), 'slave:master.example:8443\n');
  assert.equal(statSync(path.join(dir, SECRET_FILE)).mode & 0o777, 0o600);

  const slave = PoolRole.load(dir, log);
  assert.deepEqual(slave.role, { kind: 'slave', master: 'master.example:8443' });
  assert.equal(slave.masterAddress, 'master.example:8443');
  assert.equal(slave.secret(), secret);
  // Clients get the address part only; local sessions pass.
  assert.deepEqual(errorOf(() => slave.admit('session.login_with_password', false)), ['HOST_IS_SLAVE', 'master.example']);
  assert.deepEqual(errorOf(() => slave.admit('VM.get_all', false)), ['HOST_IS_SLAVE', 'master.example']);
  slave.admit('VM.get_all', true);

  slave.setRole({ kind: 'master' });
  const back = PoolRole.load(dir, log);
  assert.deepEqual(back.role, { kind: 'master' });
  assert.equal(back.secret(), secret, 'a master keeps the secret it has');

  // Bad input is refused before anything is written, and a bad secret is not echoed.
  assert.deepEqual(errorOf(() => back.setRole({ kind: 'slave', master: 'no such:host' })), ['INVALID_VALUE', 'master_address', 'no such:host']);
  const bad = errorOf(() => back.setRole({ kind: 'slave', master: '10.0.0.1' }, 'short secret'));
  assert.equal(bad[0], 'Error');
  assert.ok(!bad[1]!.includes('short secret'));
  assert.equal(readFileSync(path.join(dir, ROLE_FILE), 'utf8'), 'master\n');
});

test('a slave keeps the secret it was given and makes none; a secret file open to others is closed', (t) => {
  const dir = withDir(t);
  const { log, lines } = memoryLog();
  writeFileSync(path.join(dir, ROLE_FILE), 'slave:192.0.2.1\n');
  const r = PoolRole.load(dir, log);
  assert.equal(r.secret(), undefined);
  assert.ok(!existsSync(path.join(dir, SECRET_FILE)));
  assert.ok(lines.some((l) => l.level === 40 && /no pool secret/.test(l.msg)));

  const secret = 'a1b2'.repeat(10);
  writeFileSync(path.join(dir, SECRET_FILE), `${secret}\n`);
  chmodSync(path.join(dir, SECRET_FILE), 0o644);
  assert.equal(PoolRole.load(dir, log).secret(), secret);
  assert.equal(statSync(path.join(dir, SECRET_FILE)).mode & 0o777, 0o600);
});

test('garbage in the role file: broken, said in one error line, file left as it was', (t) => {
  const dir = withDir(t);
  const garbage = Buffer.from([0x73, 0x6c, 0x61, 0x76, 0x65, 0x3a, 0xff, 0x00, 0x0a]);
  writeFileSync(path.join(dir, ROLE_FILE), garbage);
  const { log, lines } = memoryLog();
  const r = PoolRole.load(dir, log);
  assert.deepEqual(r.role, { kind: 'broken' });
  assert.equal(lines.length, 1);
  assert.equal(lines[0].level, 50);
  assert.match(lines[0].msg, /not valid .*broken host/);
  assert.deepEqual(readFileSync(path.join(dir, ROLE_FILE)), garbage);
  // Only the emergency calls pass.
  assert.deepEqual(errorOf(() => r.admit('session.login_with_password', true)), ['HOST_BROKEN']);
  assert.deepEqual(errorOf(() => r.admit('VM.get_all', true)), ['HOST_BROKEN']);
  r.admit('session.slave_local_login_with_password', true);
  r.admit('session.local_logout', true);

  // A role file that cannot be read at all (here a directory in its place) is the same.
  rmSync(path.join(dir, ROLE_FILE));
  mkdirSync(path.join(dir, ROLE_FILE));
  const { log: log2, lines: lines2 } = memoryLog();
  assert.deepEqual(PoolRole.load(dir, log2).role, { kind: 'broken' });
  assert.equal(lines2.length, 1);
  assert.match(lines2[0].msg, /cannot be read/);
});

test('a torn temporary file left by a kill is ignored (and removed)', (t) => {
  const dir = withDir(t);
  writeFileSync(path.join(dir, ROLE_FILE), 'slave:10.0.0.1\n');
  writeFileSync(path.join(dir, `${ROLE_FILE}.tmp`), 'sla');
  writeFileSync(path.join(dir, `${SECRET_FILE}.tmp`), '0123');
  const { log } = memoryLog();
  assert.deepEqual(PoolRole.load(dir, log).role, { kind: 'slave', master: '10.0.0.1' });
  assert.ok(!existsSync(path.join(dir, `${ROLE_FILE}.tmp`)));
  assert.ok(!existsSync(path.join(dir, `${SECRET_FILE}.tmp`)));
});

// A process that rewrites the role as fast as it can, killed at a random moment: the
// file then holds one of the two roles whole, whatever the moment was.
const WRITER = `
const { PoolRole } = await import(process.argv[1]);
const quiet = { info() {}, warn() {}, error() {} };
const r = PoolRole.load(process.argv[2], quiet);
const roles = [{ kind: 'slave', master: 'a.example:1' }, { kind: 'slave', master: '[fd00::2]:2' }];
for (let i = 0; ; i++) {
  r.setRole(roles[i % 2]);
  if (i === 0) process.stdout.write('writing\\n');
}
`;

test('a writer killed while it rewrites the role leaves a whole role file', async (t) => {
  const roleModule = new URL('../../src/pool/role.js', import.meta.url).href;
  for (let round = 0; round < 5; round++) {
    const dir = withDir(t);
    const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, roleModule, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the writer exited with ${code}`)));
    });
    await sleep(5 + Math.floor(Math.random() * 40));
    child.kill('SIGKILL');
    await exited;
    const text = readFileSync(path.join(dir, ROLE_FILE), 'utf8');
    assert.ok(['slave:a.example:1\n', 'slave:[fd00::2]:2\n'].includes(text), JSON.stringify(text));
    const { log, lines } = memoryLog();
    assert.equal(PoolRole.load(dir, log).role.kind, 'slave');
    assert.ok(!lines.some((l) => l.level >= 50), 'not broken');
  }
});
