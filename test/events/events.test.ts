// The event feed: event.from (tokens, coalescing, timeouts), the classic
// register/next interface, and what ends a blocked call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonCall, startDaemon, xmlCall } from '../helpers/daemon.js';
import { connect, vmRecord } from '../helpers/api.js';

test('event.from: an empty token lists everything, then changes arrive coalesced', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const api = await connect(d.url);
  const vm = await api.call('VM.create', vmRecord('watched'));
  const first = await api.call('event.from', ['VM', 'host'], '', 10);
  const vms = first.events.filter((e: any) => e.class === 'vm');
  assert.ok(vms.every((e: any) => e.operation === 'add' && e.snapshot));
  assert.ok(vms.some((e: any) => e.ref === vm && e.snapshot.name_label === 'watched'));
  assert.equal(first.events.filter((e: any) => e.class === 'host').length, 1);
  assert.equal(first.valid_ref_counts.vm, vms.length);
  assert.match(first.token, /^\d{20},\d{20}$/);

  // Three changes to one object and a new one: one mod with the last record, one add.
  await api.call('VM.set_name_label', vm, 'one');
  await api.call('VM.set_name_label', vm, 'two');
  await api.call('VM.add_to_other_config', vm, 'k', 'v');
  const other = await api.call('VM.create', vmRecord('other'));
  const next = await api.call('event.from', ['vm'], first.token, 10);
  const summary = next.events.map((e: any) => [e.operation, e.ref, e.snapshot?.name_label]);
  assert.deepEqual(summary, [['mod', vm, 'two'], ['add', other, 'other']]);
  assert.deepEqual(next.events[0].snapshot.other_config, { k: 'v' });

  // A deletion comes as del; classes filter; nothing new → empty after the timeout.
  await api.call('VM.destroy', other);
  const del = await api.call('event.from', ['VM'], next.token, 10);
  assert.deepEqual(del.events.map((e: any) => [e.operation, e.ref]), [['del', other]]);
  const quiet = await api.call('event.from', ['host'], del.token, 0.2);
  assert.deepEqual(quiet.events, []);

  // A blocked call returns as soon as a change it wants is committed.
  const waiting = api.call('event.from', ['vm'], del.token, 30);
  await new Promise((r) => setTimeout(r, 100));
  await api.call('VM.set_name_label', vm, 'three');
  const woke = await waiting;
  assert.deepEqual(woke.events.map((e: any) => e.snapshot.name_label), ['three']);

  // event.inject bumps one object; the token it returns sees that bump.
  const injected = await api.call('event.inject', 'vm', vm);
  const seen = await api.call('event.from', ['vm'], injected, 5);
  assert.deepEqual(seen.events.map((e: any) => [e.operation, e.ref]), [['mod', vm]]);
  assert.deepEqual(await api.failure('event.inject', 'VM', 'OpaqueRef:nope'), ['HANDLE_INVALID', 'VM', 'OpaqueRef:nope']);
  assert.deepEqual(await api.failure('event.from', ['vm'], 'not a token', 1), ['EVENT_FROM_TOKEN_PARSE_FAILURE', 'not a token']);
});

test('event.from over XML-RPC: typed snapshots and i4 ref counts', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const api = await connect(d.url);
  const r = await xmlCall(d.url, 'event.from', [api.session, ['host'], '', 1.5]);
  assert.equal(r.Status, 'Success');
  const ev = r.Value.events[0];
  assert.equal(ev.class, 'host');
  assert.equal(ev.operation, 'add');
  assert.equal(ev.snapshot.API_version_major, '1', 'ints travel as strings');
  assert.equal(ev.snapshot.enabled, true);
  assert.equal(r.Value.valid_ref_counts.host, 1, '<i4> decodes as a number');
});

test('classic events: register, next, unregister, get_current_id', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const api = await connect(d.url);
  assert.deepEqual(await api.failure('event.next'), ['SESSION_NOT_REGISTERED', api.session]);
  await api.call('event.register', ['VM']);
  const before = await api.call('event.get_current_id');
  const vm = await api.call('VM.create', vmRecord('classic'));
  await api.call('VM.set_name_label', vm, 'renamed');
  await api.call('network.create', { name_label: 'not watched', name_description: '', other_config: {} });
  const events = await api.call('event.next');
  // No coalescing here: one event per change (the rename at least), oldest first, ids increasing.
  assert.ok(events.length >= 2);
  assert.ok(events.every((e: any) => e.class === 'vm' && e.ref === vm));
  assert.equal(events[0].operation, 'add');
  assert.ok(events.slice(1).every((e: any) => e.operation === 'mod'));
  assert.ok(Number(events[0].id) >= before);
  for (let i = 1; i < events.length; i++) assert.ok(Number(events[i].id) > Number(events[i - 1].id));
  assert.match(events[0].timestamp, /^\d+\.\d+$/);
  assert.equal(events.at(-1).snapshot.name_label, 'renamed');

  await api.call('VM.destroy', vm);
  // Destroying may first touch the object (operations bookkeeping); the del comes last,
  // with the record as it was. Events of an object that is gone carry no snapshot.
  const del = await api.call('event.next');
  assert.ok(del.every((e: any) => e.ref === vm));
  assert.deepEqual([del.at(-1).operation, del.at(-1).snapshot?.name_label], ['del', 'renamed']);
  assert.ok(del.slice(0, -1).every((e: any) => e.operation === 'mod' && e.snapshot === undefined));

  // '*' is every class; unregister leaves the subscription in place.
  await api.call('event.register', ['*']);
  await api.call('event.unregister', ['vm']);
  const net = await api.call('network.create', { name_label: 'now watched', name_description: '', other_config: {} });
  const e2 = await api.call('event.next');
  assert.ok(e2.some((e: any) => e.class === 'network' && e.ref === net));
});

test('logging out wakes a blocked event call with SESSION_INVALID', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const watcher = await connect(d.url);
  const admin = await connect(d.url);
  await watcher.call('event.register', ['vm']);
  const token = (await watcher.call('event.from', ['vm'], '', 0)).token;
  const blocked = watcher.failure('event.next');
  const blockedFrom = watcher.failure('event.from', ['vm'], token, 60);
  // Another session's logout leaves the watcher waiting; its own wakes it.
  await admin.call('session.logout');
  await new Promise((r) => setTimeout(r, 100));
  await jsonCall(d.url, 'session.logout', [watcher.session]);
  assert.equal((await blocked)[0], 'SESSION_INVALID');
  assert.equal((await blockedFrom)[0], 'SESSION_INVALID');
});

test('stopping the daemon answers blocked event calls at once, and it exits', { timeout: 30_000 }, async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const watcher = await connect(d.url);
  await watcher.call('event.register', ['vm']);
  const token = (await watcher.call('event.from', ['vm'], '', 0)).token;
  // Waits far longer than this test may run (event.next's own bound is 60 s): only the
  // stop can end them in time, and the kept-alive connections they used must not hold it up.
  const from = watcher.call('event.from', ['vm'], token, 3600);
  const next = watcher.call('event.next');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await d.stop(), 0);
  const batch = await from;
  assert.deepEqual(batch.events, []);
  assert.equal(batch.token, token, 'nothing happened, so the token is the same');
  assert.deepEqual(await next, []);
});
