// Async calls and the task records behind them: results, failures, client-made tasks,
// cancellation, clean-up after logout and expiry, and recovery after a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { jsonCall, startDaemon, tempDir, xmlCall } from '../helpers/daemon.js';
import { connect, until, vmRecord } from '../helpers/api.js';

test('Async calls answer a task at once and the task holds the outcome', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const api = await connect(d.url);
  const hosts = await api.call('host.get_all');

  const task = await api.call('Async.VM.create', vmRecord('async-vm'));
  assert.match(task, /^OpaqueRef:/);
  const done = await until(async () => {
    const r = await api.call('task.get_record', task);
    return r.status === 'pending' ? undefined : r;
  }, 'the task to finish');
  assert.equal(done.status, 'success');
  assert.equal(done.name_label, 'Async.VM.create');
  assert.equal(done.progress, 1);
  assert.equal(done.resident_on, hosts[0]);
  assert.equal(done.type, '<none/>');
  assert.deepEqual(done.error_info, []);
  assert.notEqual(done.finished, '19700101T00:00:00Z');
  const m = /^<value>(OpaqueRef:[0-9a-f-]+)<\/value>$/.exec(done.result);
  assert.ok(m, `result is the XML-RPC value of the ref: ${done.result}`);
  assert.equal(await api.call('VM.get_name_label', m[1]), 'async-vm');

  // A void result is an empty value; a failure lands in error_info, not in the reply.
  const destroy = await api.call('Async.VM.destroy', m[1]);
  const d2 = await until(async () => ((await api.call('task.get_status', destroy)) === 'pending' ? undefined : api.call('task.get_record', destroy)), 'destroy');
  assert.equal(d2.status, 'success');
  assert.equal(d2.result, '<value></value>');
  const bad = await api.call('Async.VM.destroy', 'OpaqueRef:no-such-vm');
  const d3 = await until(async () => ((await api.call('task.get_status', bad)) === 'pending' ? undefined : api.call('task.get_record', bad)), 'failure');
  assert.equal(d3.status, 'failure');
  assert.deepEqual(d3.error_info, ['HANDLE_INVALID', 'VM', 'OpaqueRef:no-such-vm']);
  assert.equal(d3.result, '');

  // What fails at once: counts, types, no async form; over XML-RPC too.
  assert.equal((await api.failure('Async.VM.destroy'))[0], 'MESSAGE_PARAMETER_COUNT_MISMATCH');
  assert.deepEqual(await api.failure('Async.VM.get_name_label', m[1]), ['Fault', 'No async mode for this operation (rpc: VM.get_name_label)']);
  assert.deepEqual(await api.failure('Async.session.logout'), ['Fault', 'No async mode for this operation (rpc: session.logout)']);
  const viaXml = await xmlCall(d.url, 'Async.VM.create', [api.session, vmRecord('xml-async')]);
  assert.equal(viaXml.Status, 'Success');
  assert.match(viaXml.Value, /^OpaqueRef:/);
});

test('client-made tasks: create, cancel, destroy; finished tasks refuse cancel', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const api = await connect(d.url);
  const task = await api.call('task.create', 'my job', 'made by a client');
  const rec = await api.call('task.get_record', task);
  assert.equal(rec.status, 'pending');
  assert.equal(rec.name_label, 'my job');
  assert.deepEqual(rec.allowed_operations, ['cancel']);
  await api.call('task.cancel', task);
  assert.equal(await api.call('task.get_status', task), 'cancelled');
  assert.deepEqual(await api.call('task.get_allowed_operations', task), []);
  assert.equal((await api.failure('task.cancel', task))[0], 'OPERATION_NOT_ALLOWED');
  await api.call('task.destroy', task);
  assert.deepEqual(await api.failure('task.get_record', task), ['HANDLE_INVALID', 'task', task]);
});

test('tasks of a session that logs out are cleaned; finished tasks expire', async (t) => {
  const d = await startDaemon({ args: ['--task-ttl', '0.2', '--gc-interval', '0.1'] });
  t.after(() => d.cleanup());
  const a = await connect(d.url);
  const b = await connect(d.url);
  const ta = await a.call('Async.VM.create', vmRecord('a'));
  await until(async () => ((await a.call('task.get_status', ta)) === 'success' ? true : undefined), 'task a');
  await a.call('session.logout');
  await until(async () => ((await b.call('task.get_all')).includes(ta) ? undefined : true), 'logout clean-up');

  const tb = await b.call('Async.VM.create', vmRecord('b'));
  await until(async () => ((await b.call('task.get_status', tb)) === 'success' ? true : undefined), 'task b');
  // Nobody looks at it any more: the sweep removes it after the ttl.
  await new Promise((r) => setTimeout(r, 400));
  const other = await connect(d.url);
  await until(async () => ((await other.call('task.get_all')).includes(tb) ? undefined : true), 'expiry');
});

test('pending tasks end in failure after a restart, saying so', async (t) => {
  const stateDir = tempDir();
  t.after(() => rmSync(stateDir, { recursive: true, force: true }));
  const d1 = await startDaemon({ stateDir });
  const api1 = await connect(d1.url);
  const task = await api1.call('task.create', 'interrupted', '');
  await d1.stop('SIGKILL');
  const d2 = await startDaemon({ stateDir });
  t.after(() => d2.stop());
  const api2 = await connect(d2.url);
  const rec = await api2.call('task.get_record', task);
  assert.equal(rec.status, 'failure');
  assert.match(rec.error_info.join(' '), /restarted/);
  assert.ok(d2.logs.some((l) => l.includes('marked failed')));
});

test('a sync call to an async-capable message runs under a short-lived task', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const api = await connect(d.url);
  const token = (await api.call('event.from', ['task'], '', 0)).token;
  await api.call('VM.create', vmRecord('sync'));
  const batch = await api.call('event.from', ['task'], token, 5);
  // Created and deleted within the window: both are reported, never lost.
  const ops = batch.events.map((e: any) => `${e.operation}:${e.snapshot?.name_label ?? ''}`);
  assert.deepEqual(ops, ['add:VM.create', 'del:']);
  assert.deepEqual(await api.call('task.get_all'), []);
  void jsonCall;
});
