// The plugin host on its own: discovery of the shipped plugins, the answer rules, the
// error mapping, and plugins that crash, hang or talk nonsense.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { builtinPluginDir, discoverPlugins, loadManifest, type Manifest } from '../../src/storage/manifest.js';
import { mapPluginFailure, PluginFailure, PluginPool, runPlugin } from '../../src/storage/plugin.js';
import { ChildRegistry } from '../../src/storage/children.js';
import { XenApiError } from '../../src/core/errors.js';
import { tmp } from './helpers.js';

const log = pino({ level: 'silent' });

function shellPlugin(root: string, type: string, script: string, timeout = 60): Manifest {
  const dir = path.join(root, type);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({
    type, name: `test ${type}`, vendor: 'tests', version: '0', required_api_version: '1.0',
    capabilities: ['VDI_CREATE', 'NOT_A_CAPABILITY'], configuration: { path: 'a test key' }, exec: 'run.sh', timeout_seconds: timeout,
  }));
  writeFileSync(path.join(dir, 'run.sh'), `#!/bin/sh\n${script}\n`);
  chmodSync(path.join(dir, 'run.sh'), 0o755);
  return loadManifest(dir);
}

async function failureOf(p: Promise<unknown>): Promise<XenApiError | PluginFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof XenApiError || e instanceof PluginFailure) return e;
    throw e;
  }
  throw new Error('the call succeeded');
}

test('the shipped plugins are found with their manifests', () => {
  const found = discoverPlugins([builtinPluginDir], log);
  assert.deepEqual([...found.keys()].sort(), ['file', 'iso', 'lvm']);
  for (const m of found.values()) {
    assert.ok(m.name && m.vendor && m.version, m.type);
    assert.ok(Object.keys(m.configuration).length > 0, `${m.type} documents its device_config keys`);
    assert.ok(m.capabilities.includes('VDI_ATTACH'));
  }
  assert.deepEqual(Object.keys(found.get('file')!.configuration), ['location']);
  assert.deepEqual(Object.keys(found.get('lvm')!.configuration), ['device']);
  assert.equal(found.get('iso')!.content_type, 'iso');
  assert.ok(!found.get('iso')!.capabilities.includes('VDI_CREATE'));
});

test('plugin answers: results, errors, crashes, garbage and hangs', async (t) => {
  const root = tmp('xapid-plugins-');
  const children = new ChildRegistry(path.join(root, '.running'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const opts = { hostUuid: 'h', children };
  const sr = { uuid: 'u', device_config: { path: '/x' }, sm_config: {} };

  await t.test('a manifest drops unknown capabilities and needs a runnable exec', () => {
    const m = shellPlugin(root, 'echoer', 'cat >/dev/null; echo \'{"status":"ok","result":{"x":1}}\'');
    assert.deepEqual(m.capabilities, ['VDI_CREATE']);
    mkdirSync(path.join(root, 'broken'));
    writeFileSync(path.join(root, 'broken', 'manifest.json'), JSON.stringify({ type: 'broken', exec: 'missing' }));
    mkdirSync(path.join(root, 'future'));
    writeFileSync(path.join(root, 'future', 'manifest.json'), JSON.stringify({ type: 'future', exec: '../echoer/run.sh', required_api_version: '2.0' }));
    const found = discoverPlugins([root], log);
    assert.ok(found.has('echoer'));
    assert.ok(!found.has('broken') && !found.has('future'));
  });

  await t.test('the request arrives on stdin as JSON', async () => {
    const m = shellPlugin(root, 'mirror', 'req=$(cat); printf \'{"status":"ok","result":{"request":%s}}\' "$req"');
    const r = await runPlugin(m, { command: 'vdi_create', sr, vdi: { uuid: 'v', location: '', sm_config: {} }, args: { virtual_size: 5 } }, opts);
    const req = r.request as Record<string, any>;
    assert.equal(req.command, 'vdi_create');
    assert.equal(req.api_version, '1.0');
    assert.deepEqual(req.sr, sr);
    assert.equal(req.args.virtual_size, 5);
  });

  await t.test('an error answer keeps code, message and stderr', async () => {
    const m = shellPlugin(root, 'refuser', 'cat >/dev/null; echo "details on stderr" >&2; echo \'{"status":"error","code":79,"message":"no way"}\'; exit 1');
    const f = await failureOf(runPlugin(m, { command: 'sr_attach', sr }, opts));
    assert.ok(f instanceof PluginFailure);
    assert.equal(f.code, 79);
    const x = mapPluginFailure(f, { sr: 'OpaqueRef:sr', op: 'plug' });
    assert.deepEqual(x.description, ['SR_BACKEND_FAILURE_79', '', 'no way', 'details on stderr\n']);
  });

  await t.test('error codes with a XenAPI error of their own', () => {
    const ctx = { sr: 'OpaqueRef:sr', vdi: 'OpaqueRef:vdi', op: 'clone' };
    const map = (code: number, params: string[] = []) => mapPluginFailure(new PluginFailure(code, 'm', params, ''), ctx).description;
    assert.deepEqual(map(38), ['SR_OPERATION_NOT_SUPPORTED', 'OpaqueRef:sr']);
    assert.deepEqual(map(39), ['SR_NOT_EMPTY']);
    assert.deepEqual(map(24), ['VDI_IN_USE', 'OpaqueRef:vdi', 'clone']);
    assert.deepEqual(map(16), ['SR_DEVICE_IN_USE']);
    assert.deepEqual(map(144), ['VDI_MISSING', 'OpaqueRef:sr', 'OpaqueRef:vdi']);
    assert.deepEqual(map(44, ['100', '50']), ['SR_FULL', '100', '50']);
    assert.deepEqual(map(44), ['SR_BACKEND_FAILURE_44', '', 'm', '']);
  });

  await t.test('a crash is SR_BACKEND_FAILURE [reason, stdout, stderr]', async () => {
    const m = shellPlugin(root, 'crasher', 'cat >/dev/null; echo partial; echo "Traceback: boom" >&2; exit 3');
    const f = await failureOf(runPlugin(m, { command: 'sr_scan', sr }, opts));
    assert.ok(f instanceof XenApiError);
    assert.equal(f.code, 'SR_BACKEND_FAILURE');
    assert.match(f.params[0]!, /exit status 3/);
    assert.equal(f.params[1], 'partial\n');
    assert.equal(f.params[2], 'Traceback: boom\n');
  });

  await t.test('garbage on stdout, or "ok" with a failing exit status, is a crash too', async () => {
    const g = shellPlugin(root, 'garbage', 'cat >/dev/null; echo "<methodResponse/>"');
    const f = await failureOf(runPlugin(g, { command: 'sr_scan', sr }, opts));
    assert.ok(f instanceof XenApiError && f.code === 'SR_BACKEND_FAILURE');
    assert.match(f.params[0]!, /not a JSON object/);
    const o = shellPlugin(root, 'liar', 'cat >/dev/null; echo \'{"status":"ok","result":{}}\'; exit 1');
    const f2 = await failureOf(runPlugin(o, { command: 'sr_scan', sr }, opts));
    assert.ok(f2 instanceof XenApiError && f2.code === 'SR_BACKEND_FAILURE');
  });

  await t.test('a hung plugin is stopped at its deadline, with everything it started', async () => {
    const pidFile = path.join(root, 'sleeper.pid');
    const m = shellPlugin(root, 'hanger', `cat >/dev/null; sleep 600 & echo $! > ${pidFile}; wait`, 1);
    const f = await failureOf(runPlugin(m, { command: 'vdi_create', sr }, opts));
    assert.ok(f instanceof XenApiError && f.code === 'SR_BACKEND_FAILURE');
    assert.match(f.params[0]!, /did not answer vdi_create within 1 s/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    // The group was killed with SIGKILL: the grandchild is gone (or a zombie about to be reaped).
    const state = existsSync(`/proc/${pid}`) ? /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] : 'gone';
    assert.ok(state === 'gone' || state === 'Z', `the plugin's child is still running (${state})`);
  });

  await t.test('spare processes: started ahead of need, but not while a copy runs', async () => {
    const m = shellPlugin(root, 'spared', 'cat >/dev/null; echo \'{"status":"ok","result":{}}\'');
    const running = path.join(root, '.pool-running');
    const pool = new PluginPool(new ChildRegistry(running), 2);
    t.after(() => pool.stop());
    // The registry lists every process the pool has started that has not exited.
    const alive = () => readdirSync(running).length;
    const call = () => runPlugin(m, { command: 'sr_stat', sr }, { ...opts, pool });
    await pool.quietDuring(async () => {
      await call();
      await call();
      assert.equal(alive(), 0, 'no spare is started during the copy');
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(alive(), 2, 'the spares owed are started once it is over');
    await call();
    assert.equal(alive(), 2, 'outside a copy a spare is replaced as soon as it is taken');
  });

  await t.test('a plugin that cannot be started', async () => {
    const m = shellPlugin(root, 'vanishing', 'exit 0');
    rmSync(m.exec);
    const f = await failureOf(runPlugin(m, { command: 'sr_scan', sr }, opts));
    assert.ok(f instanceof XenApiError && f.code === 'SR_BACKEND_FAILURE');
  });
});
