// A daemon killed in the middle of storage work (by the XAPID_STORAGE_FAULT hook, as
// abruptly as a power cut for the daemon) restarts with no orphan image and no record
// naming a missing file, and with the data of the disks involved intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { jsonCall, tempDir, type TestDaemon } from '../helpers/daemon.js';
import type { Api } from '../helpers/api.js';
import { fileSr, hasPattern, images, MiB, QEMU_MISSING, storageDaemon, tmp, vdiArgs, writePattern } from './helpers.js';

function exited(d: TestDaemon): Promise<NodeJS.Signals | null> {
  if (d.proc.exitCode !== null || d.proc.signalCode !== null) return Promise.resolve(d.proc.signalCode);
  return new Promise((resolve) => d.proc.once('exit', (_code, signal) => resolve(signal)));
}

/** Starts a daemon with the fault armed, makes the call, and checks that it died of it. */
async function crashDuring(stateDir: string, fault: string, method: string, args: (api: Api) => unknown[], env: Record<string, string> = {}): Promise<void> {
  const { d, api } = await storageDaemon({ stateDir, env: { XAPID_STORAGE_FAULT: fault, ...env } });
  try {
    const r = await jsonCall(d.url, method, [api.session, ...args(api)]).catch((e: Error) => ({ transportError: e.message }));
    assert.ok('transportError' in r, `${method} answered instead of the daemon dying: ${JSON.stringify(r)}`);
    assert.equal(await exited(d), 'SIGKILL');
  } finally {
    await d.stop();
  }
}

/** Records and files agree: each record's image exists, each image has a record, each base is used. */
async function agree(api: Api, sr: string, dir: string): Promise<void> {
  const recs = await Promise.all(((await api.call('SR.get_record', sr)).VDIs as string[]).map((v) => api.call('VDI.get_record', v)));
  assert.deepEqual(recs.map((r) => r.location).sort(), images(dir), `records and images of ${dir}`);
  const chains = images(dir).map((f) => execFileSync('qemu-img', ['info', '--backing-chain', path.join(dir, f)], { encoding: 'utf8' })).join('\n');
  for (const b of readdirSync(dir).filter((f) => f.startsWith('.base-'))) assert.ok(chains.includes(b), `base ${b} is used by no image`);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.tmp-')), [], 'no temporary files');
}

test('a daemon killed mid clone, copy, destroy or SR.create leaves no orphan and no dangling record', { skip: QEMU_MISSING }, async (t) => {
  const stateDir = tempDir();
  const dirA = tmp('xapid-crash-a-');
  const dirB = tmp('xapid-crash-b-');
  const dirC = tmp('xapid-crash-c-');
  t.after(() => {
    for (const x of [stateDir, dirA, dirB, dirC]) rmSync(x, { recursive: true, force: true });
  });

  /** Runs fn against a clean daemon on the state directory, always stopping it after. */
  const withDaemon = async <T>(fn: (x: { d: TestDaemon; api: Api; host: string }) => Promise<T>): Promise<T> => {
    const x = await storageDaemon({ stateDir });
    try {
      return await fn(x);
    } finally {
      await x.d.stop();
    }
  };

  const { srA, srB, v, vRec, host } = await withDaemon(async ({ api, host }) => {
    const srA = await fileSr(api, host, dirA, 'A');
    const srB = await fileSr(api, host, dirB, 'B');
    const v = await api.call('VDI.create', vdiArgs(srA, 32 * MiB, 'precious'));
    const vRec = await api.call('VDI.get_record', v);
    writePattern(path.join(dirA, vRec.location), 0x6b, 0, 32 * MiB);
    return { srA, srB, v, vRec, host };
  });
  const file = path.join(dirA, vRec.location);

  await t.test('clone: killed after the plugin made the image, before the record', async () => {
    await crashDuring(stateDir, 'crash-after:vdi_clone', 'VDI.clone', () => [v, {}]);
    assert.equal(images(dirA).length, 2, 'the clone image was made before the crash');
    await withDaemon(async ({ api }) => {
      await agree(api, srA, dirA);
      assert.deepEqual(images(dirA), [vRec.location]);
      assert.ok(hasPattern(file, 0x6b, 0, 32 * MiB), 'the cloned disk keeps its bytes');
    });
  });

  await t.test('snapshot: the same', async () => {
    await crashDuring(stateDir, 'crash-after:vdi_snapshot', 'VDI.snapshot', () => [v, {}]);
    assert.equal(images(dirA).length, 2);
    await withDaemon(async ({ api }) => {
      await agree(api, srA, dirA);
      assert.ok(hasPattern(file, 0x6b, 0, 32 * MiB));
    });
  });

  await t.test('copy: killed while qemu-img is still copying', async () => {
    await crashDuring(stateDir, 'crash-during-copy', 'VDI.copy', () => [v, srB], { XAPID_COPY_RATE_LIMIT: '4M' });
    assert.equal(images(dirB).length, 1, 'the half-made copy exists after the crash');
    await withDaemon(async ({ d, api }) => {
      assert.ok(d.logs.some((l) => l.includes('ended storage processes left running') && l.includes('qemu-img convert')), 'the old copy process was ended');
      await agree(api, srB, dirB);
      assert.deepEqual(images(dirB), []);
      assert.ok(hasPattern(file, 0x6b, 0, 32 * MiB));
    });
  });

  await t.test('copy: killed after the data was written, before the record', async () => {
    await crashDuring(stateDir, 'crash-after:copy', 'VDI.copy', () => [v, srB]);
    assert.equal(images(dirB).length, 1);
    await withDaemon(async ({ api }) => {
      await agree(api, srB, dirB);
      assert.deepEqual(images(dirB), []);
    });
  });

  await t.test('destroy: killed after the image went, before the record', async () => {
    const doomed = await withDaemon(({ api }) => api.call('VDI.create', vdiArgs(srA, 8 * MiB, 'doomed')));
    await crashDuring(stateDir, 'crash-after:vdi_delete', 'VDI.destroy', () => [doomed]);
    await withDaemon(async ({ api }) => {
      await agree(api, srA, dirA);
      assert.equal((await api.failure('VDI.get_record', doomed))[0], 'HANDLE_INVALID');
      assert.ok(hasPattern(file, 0x6b, 0, 32 * MiB));
    });
  });

  await t.test('SR.create: killed after the storage was made, before the records', async () => {
    await crashDuring(stateDir, 'crash-after:sr_create', 'SR.create', () => [host, { location: dirC }, 0, 'C', '', 'file', '', false, {}]);
    assert.ok(readdirSync(dirC).includes('.xapid-sr.json'), 'the SR marker was written before the crash');
    await withDaemon(async ({ api }) => {
      assert.deepEqual(readdirSync(dirC), [], 'the unrecorded SR is removed');
      assert.equal((await api.call('SR.get_by_name_label', 'C')).length, 0);
      await agree(api, srA, dirA);
    });
  });
});
