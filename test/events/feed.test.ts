// The change feed's waiters and the answers event.from builds from it, in-process: one
// commit wakes every waiter that wants it, once, and those holding the same token share
// one answer; waits end at their own deadlines and on cancel; nothing is lost or repeated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeFeed, type WakeReason } from '../../src/events/feed.js';
import { EventService, formatToken } from '../../src/events/service.js';
import { encodeJson } from '../../src/rpc/jsonrpc.js';
import { typedSuccessBody } from '../../src/rpc/xmlrpc.js';
import { classes } from '../../src/datamodel/model.js';
import { openTestStore } from '../helpers/store.js';

function setup(t: { after(fn: () => void): void }) {
  const { store } = openTestStore(t, 'xapid-feed-');
  const feed = new ChangeFeed(store, { memory: 1000, retain: 10_000 });
  const events = new EventService(store, feed, { nextBoundMs: 60_000, maxQueue: 1000 });
  return { store, feed, events };
}

const isVm = (c: { cls: string }) => c.cls === 'VM';
const isNetwork = (c: { cls: string }) => c.cls === 'network';
const settled = () => new Promise((r) => setImmediate(r));

test('one commit wakes every waiter that wants it, once; the others wait on', async (t) => {
  const { store, feed } = setup(t);
  const woken: Array<[string, WakeReason]> = [];
  const vmWaits = Array.from({ length: 50 }, (_, i) => feed.wait(isVm, 60_000).then((why) => woken.push([`vm${i}`, why])));
  const netWait = feed.wait(isNetwork, 60_000, 'net-owner').then((why) => woken.push(['net', why]));
  assert.equal(feed.waiterCount(), 51);

  // Several commits in one go: one pass wakes each VM waiter once.
  store.create('VM', { name_label: 'a' });
  store.create('VM', { name_label: 'b' });
  await Promise.all(vmWaits);
  await settled();
  assert.equal(woken.length, 50);
  assert.ok(woken.every(([, why]) => why === 'change'));
  assert.equal(feed.waiterCount(), 1, 'the network waiter is still waiting');

  feed.cancel('someone else');
  assert.equal(feed.waiterCount(), 1);
  feed.cancel('net-owner');
  await netWait;
  assert.deepEqual(woken.at(-1), ['net', 'cancelled']);
  assert.equal(feed.waiterCount(), 0);
});

test('waits end at their own deadlines, whatever order they began in', async (t) => {
  const { feed } = setup(t);
  const order: number[] = [];
  const reasons: WakeReason[] = [];
  const waits = [300, 20, 150, 0, 80].map((ms) => feed.wait(isVm, ms).then((why) => {
    order.push(ms);
    reasons.push(why);
  }));
  await Promise.all(waits);
  assert.deepEqual(order, [0, 20, 80, 150, 300]);
  assert.ok(reasons.every((r) => r === 'timeout'));
  assert.equal(feed.waiterCount(), 0);
});

test('event.from: waiters on one token share one answer; each token gets its own changes, none twice', async (t) => {
  const { store, feed, events } = setup(t);
  const vm = store.create('VM', { name_label: 'v0' });
  const start = formatToken(feed.current());
  // Some waiters hold the token from before a change, others one from after it.
  store.update('VM', vm, { name_label: 'v1' });
  const later = formatToken(feed.current());
  const early = Array.from({ length: 20 }, () => events.from('s1', ['vm'], start, 30));
  const late = Array.from({ length: 20 }, () => events.from('s2', ['VM'], later, 30));
  const earlyAnswers = await Promise.all(early);
  assert.ok(earlyAnswers.every((b) => b === earlyAnswers[0]), 'one answer for one token');
  assert.deepEqual(earlyAnswers[0]!.events.map((e) => [e.operation, e.snapshot?.name_label]), [['mod', 'v1']]);

  const net = store.create('network', { name_label: 'not watched' });
  await settled();
  assert.equal(feed.waiterCount(), 20, 'a change of another class wakes no vm waiter for good');
  store.update('VM', vm, { name_label: 'v2' });
  const lateAnswers = await Promise.all(late);
  assert.ok(lateAnswers.every((b) => b === lateAnswers[0]));
  const batch = lateAnswers[0]!;
  assert.deepEqual(batch.events.map((e) => [e.operation, e.ref, e.snapshot?.name_label]), [['mod', vm, 'v2']]);

  // Following the tokens from the start sees every change once, in order.
  const seen: string[] = [];
  let token = start;
  for (;;) {
    const b = await events.from('s3', ['vm', 'network'], token, 0);
    if (b.events.length === 0) break;
    for (const e of b.events) seen.push(`${e.class}|${e.operation}|${String(e.snapshot?.name_label)}|${e.id}`);
    token = b.token;
  }
  assert.equal(new Set(seen).size, seen.length, 'no event twice');
  assert.deepEqual(seen.map((s) => s.split('|').slice(0, 3).join(' ')), ['vm mod v2', 'network add not watched']);
  assert.ok(store.exists('network', net));

  // Both codecs send a shared answer as the same bytes every time.
  const type = classes.get('event')!.messages.get('from')!.result;
  const json = (id: number) => encodeJson({ method: 'event.from', params: [], id, v2: true }, { ok: true, value: batch, type }).toBuffer().toString();
  assert.equal(json(7), json(7));
  assert.deepEqual(JSON.parse(json(8)).result, JSON.parse(JSON.stringify(batch)));
  assert.equal(typedSuccessBody(type, batch).toBuffer(), typedSuccessBody(type, batch).toBuffer(), 'the XML answer is made once');
});

test('a session that ends wakes its blocked calls only', async (t) => {
  const { feed, events } = setup(t);
  const token = formatToken(feed.current());
  const mine = events.from('ending', ['vm'], token, 30).then(() => 'answered', (e: { code?: string }) => e.code);
  const theirs = events.from('staying', ['vm'], token, 30);
  events.register('ending', ['vm']);
  const classic = events.next('ending').then(() => 'answered', (e: { code?: string }) => e.code);
  await settled();
  assert.equal(feed.waiterCount(), 3);
  events.sessionEnded('ending');
  assert.equal(await mine, 'SESSION_INVALID');
  assert.equal(await classic, 'SESSION_INVALID');
  assert.equal(feed.waiterCount(), 1);
  const stillWaiting = await Promise.race([theirs.then(() => 'answered'), settled().then(() => 'waiting')]);
  assert.equal(stillWaiting, 'waiting');
  events.sessionEnded('staying');
  await assert.rejects(theirs, { code: 'SESSION_INVALID' });
});
