// Results handed to many callers at once (the event batch that one commit's waiters
// share), which no caller changes: each codec encodes such a result once, when it is
// first sent, and keeps the bytes for as long as the result lives.
const sharedResults = new WeakSet<object>();

export function markShared(result: object): void {
  sharedResults.add(result);
}

export function isSharedResult(v: unknown): v is object {
  return typeof v === 'object' && v !== null && sharedResults.has(v);
}
