// The event benchmark's waiting clients, run in worker threads so that the thread that
// makes the changes does not delay reading an answer. Each waiter loops on event.from
// over its own keep-alive connection and notes when an answer's last byte was read,
// before decoding it. The same loop waits on xapid and on the bare server's held route,
// which answers the same request body with a copy of a real answer.
//
// The connections speak just the HTTP/1.1 both servers answer with (one request at a
// time, a Content-Length on every answer): on this 2-core machine the client shares
// the CPU with the server it measures, and undici spends about twice the CPU per answer.
import net from 'node:net';
import { parentPort } from 'node:worker_threads';

/** Milliseconds on the machine's monotonic clock: one clock for every thread and process. */
export const clock = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface WaitSpec {
  url: string;
  /** /jsonrpc for xapid, the held route for bare. */
  path: string;
  session: string;
  token: string;
  /** The object whose name labels carry the stamps `t<clock()>`. */
  ref: string;
  waiters: number;
  timeoutSec: number;
  /** Two Int32s shared by every thread: the waiters' calls now sent and not yet answered,
   * and the answers so far that held a stamped change. */
  counters: SharedArrayBuffer;
}

export interface WaitResult {
  /** Stamp-to-delivery times of the stamped changes of `ref`, in ms. */
  latencies: number[];
  /** Events delivered, stamped or not. */
  events: number;
  errors: string[];
}

export type ToWorker = { start: WaitSpec } | { stop: true };
export type FromWorker = { started: true } | { result: WaitResult };

const EMPTY = Buffer.alloc(0);

/** One keep-alive HTTP/1.1 connection, one request at a time. */
class Connection {
  private readonly socket: net.Socket;
  private readonly head: string;
  private buf: Buffer = EMPTY;
  private pending: { resolve(a: { at: number; text: string }): void; reject(e: Error): void } | undefined;

  constructor(url: URL, path: string) {
    this.socket = net.connect(Number(url.port), url.hostname);
    this.socket.setNoDelay(true);
    this.head = `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: `;
    this.socket.on('data', (d: Buffer) => this.read(d));
    const fail = (e: Error) => this.pending?.reject(e);
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('connection closed')));
  }

  /** Resolves with the answer's body and when its last byte was read. */
  post(body: string): Promise<{ at: number; text: string }> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`${this.head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  }

  private read(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const len = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!len || !head.startsWith('HTTP/1.1 200 ')) {
      this.pending?.reject(new Error(`unexpected answer: ${head.split('\r\n')[0]}`));
      this.socket.destroy();
      return;
    }
    const size = end + 4 + Number(len[1]);
    if (this.buf.length < size) return;
    const at = clock();
    const body = this.buf.subarray(end + 4, size);
    // Not a view of what was read: that would keep each connection's last read buffer alive.
    this.buf = this.buf.length > size ? Buffer.from(this.buf.subarray(size)) : EMPTY;
    const p = this.pending;
    this.pending = undefined;
    // Decoding the answer and sending the next call wait until every answer that has come
    // in has been read: done at once, they would hold up reading (and so stamping) the
    // answers on the other connections.
    setImmediate(() => p?.resolve({ at, text: body.toString('utf8') }));
  }

  close(): void {
    this.socket.destroy();
  }
}

function run(spec: WaitSpec): { stop(): Promise<WaitResult> } {
  const result: WaitResult = { latencies: [], events: 0, errors: [] };
  let stopping = false;
  const conns: Connection[] = [];
  const counters = new Int32Array(spec.counters);
  const loop = async (): Promise<void> => {
    const conn = new Connection(new URL(spec.url), spec.path);
    conns.push(conn);
    let token = spec.token;
    let id = 0;
    while (!stopping) {
      const body = JSON.stringify({ jsonrpc: '2.0', method: 'event.from', params: [spec.session, ['vm'], token, spec.timeoutSec], id: ++id });
      let answer;
      Atomics.add(counters, 0, 1);
      try {
        answer = await conn.post(body);
      } catch (e) {
        result.errors.push(String(e));
        return;
      } finally {
        Atomics.sub(counters, 0, 1);
      }
      const r = JSON.parse(answer.text) as { result?: { events: Array<{ ref: string; snapshot?: { name_label?: string } }>; token: string }; error?: unknown };
      if (!r.result) {
        result.errors.push(JSON.stringify(r.error));
        return;
      }
      token = r.result.token;
      result.events += r.result.events.length;
      let stamped = false;
      for (const e of r.result.events) {
        const label = e.snapshot?.name_label ?? '';
        if (e.ref === spec.ref && label.startsWith('t')) {
          result.latencies.push(answer.at - Number(label.slice(1)));
          stamped = true;
        }
      }
      if (stamped) Atomics.add(counters, 1, 1);
    }
  };
  const loops = Array.from({ length: spec.waiters }, loop);
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      for (const c of conns) c.close();
      return result;
    },
  };
}

if (parentPort) {
  const port = parentPort;
  let current: ReturnType<typeof run> | undefined;
  port.on('message', (m: ToWorker) => {
    if ('start' in m) {
      current = run(m.start);
      port.postMessage({ started: true } satisfies FromWorker);
    } else if (current) {
      const c = current;
      current = undefined;
      void c.stop().then((result) => port.postMessage({ result } satisfies FromWorker));
    }
  });
}
