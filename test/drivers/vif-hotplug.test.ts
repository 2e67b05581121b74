// xapid's vif hotplug script (drivers/xl/hotplug/vif), run as libxl runs it, inside a
// network namespace the test made: a tap plays the backend device. Real Xen runs it in
// `npm run test:xen`; here xenstore-read/-write are small stand-ins on PATH that keep
// the keys in a file, since a xenstore exists only on a Xen host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VIF_SCRIPT } from '../../drivers/xl/config.js';
import { tempDir } from '../helpers/daemon.js';
import { TestNamespace } from '../network/netns.js';

const BACKEND = '/local/domain/0/backend/vif/7/0';

/** A namespace with these bridges and taps, and the script's stand-in xenstore; undefined without the rights. */
function setup(t: { after(fn: () => void): void }, links: { bridges?: string[]; taps?: string[] } = {}) {
  const ns = TestNamespace.create();
  if (!ns) return undefined;
  const dir = tempDir('xapid-vif-hotplug-');
  t.after(() => {
    ns.delete();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const b of links.bridges ?? []) ns.ip('link', 'add', 'name', b, 'type', 'bridge');
  for (const tap of links.taps ?? []) ns.ip('tuntap', 'add', 'dev', tap, 'mode', 'tap');
  const keys = path.join(dir, 'xenstore');
  writeFileSync(keys, '');
  // xenstore-write PATH VALUE [PATH VALUE…] appends "PATH=VALUE" lines; xenstore-read prints the last value.
  writeFileSync(path.join(dir, 'xenstore-write'), `#!/bin/sh\nwhile [ $# -ge 2 ]; do echo "$1=$2" >> ${keys}; shift 2; done\n`);
  writeFileSync(path.join(dir, 'xenstore-read'), `#!/bin/sh\ngrep "^$1=" ${keys} | tail -1 | cut -d= -f2- | grep .\n`);
  for (const f of ['xenstore-write', 'xenstore-read']) chmodSync(path.join(dir, f), 0o755);
  const hotplug = (command: string, env: Record<string, string>) =>
    spawnSync('ip', ['netns', 'exec', ns.name, VIF_SCRIPT, command], {
      encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH}`, XENBUS_PATH: BACKEND, ...env },
    });
  const written = () => readFileSync(keys, 'utf8').split('\n').filter(Boolean);
  return { ns, keys, hotplug, written };
}

test('online puts the backend on its bridge, up, and tells netback to connect; offline takes it off', async (t) => {
  const s = setup(t, { bridges: ['xenbr9'], taps: ['vif7.0'] });
  if (!s) return t.skip('no rights to make a network namespace here');
  const { ns, hotplug, written } = s;

  const on = hotplug('online', { vif: 'vif7.0', bridge: 'xenbr9' });
  assert.equal(on.status, 0, on.stderr);
  const dev = ns.link('vif7.0')!;
  assert.equal(dev.master, 'xenbr9');
  assert.ok(dev.flags.includes('UP'), dev.flags.join(','));
  assert.deepEqual(written(), [`${BACKEND}/hotplug-status=connected`]);

  const off = hotplug('offline', { vif: 'vif7.0', bridge: 'xenbr9' });
  assert.equal(off.status, 0, off.stderr);
  assert.equal(ns.link('vif7.0')!.master, undefined);
  // A device already gone (the usual case at offline) is no failure.
  ns.ip('link', 'delete', 'dev', 'vif7.0');
  assert.equal(hotplug('offline', { vif: 'vif7.0' }).status, 0);
});

test('the bridge is read from the backend when libxl gives none; a bridge not made yet is left to xapid', async (t) => {
  const s = setup(t, { bridges: ['xapi3'], taps: ['vif7.0', 'vif7.1'] });
  if (!s) return t.skip('no rights to make a network namespace here');
  const { ns, keys, hotplug, written } = s;
  writeFileSync(keys, `${BACKEND}/bridge=xapi3\n`);
  assert.equal(hotplug('online', { vif: 'vif7.0' }).status, 0);
  assert.equal(ns.link('vif7.0')!.master, 'xapi3');

  const r = hotplug('online', { vif: 'vif7.1', bridge: 'xapi4', XENBUS_PATH: '/local/domain/0/backend/vif/7/1' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(ns.link('vif7.1')!.master, undefined);
  assert.ok(ns.link('vif7.1')!.flags.includes('UP'));
  assert.ok(written().includes('/local/domain/0/backend/vif/7/1/hotplug-status=connected'));
});

test("an HVM guest's emulated NIC (tap, add/remove) goes on the bridge; online/offline of it is not its business", async (t) => {
  const s = setup(t, { bridges: ['xenbr9'], taps: ['vif7.0-emu'] });
  if (!s) return t.skip('no rights to make a network namespace here');
  const { ns, hotplug, written } = s;
  assert.equal(hotplug('online', { type_if: 'tap', INTERFACE: 'vif7.0-emu', bridge: 'xenbr9' }).status, 0);
  assert.equal(ns.link('vif7.0-emu')!.master, undefined, 'online is for PV backends');
  const add = hotplug('add', { type_if: 'tap', INTERFACE: 'vif7.0-emu', bridge: 'xenbr9', XENBUS_PATH: '' });
  assert.equal(add.status, 0, add.stderr);
  assert.equal(ns.link('vif7.0-emu')!.master, 'xenbr9');
  assert.deepEqual(written(), [], 'a tap has no hotplug-status of its own');
});

test('a backend that cannot be brought up fails with hotplug-error and hotplug-status error', async (t) => {
  const s = setup(t);
  if (!s) return t.skip('no rights to make a network namespace here');
  const r = s.hotplug('online', { vif: 'vif7.5' });
  assert.equal(r.status, 1);
  const keys = s.written();
  assert.ok(keys.some((k) => k.startsWith(`${BACKEND}/hotplug-error=cannot bring vif7.5 up`)), keys.join('\n'));
  assert.ok(keys.includes(`${BACKEND}/hotplug-status=error`), keys.join('\n'));
});
