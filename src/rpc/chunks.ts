// An answer put together from text and ready-made bytes (the encodings of the store's
// shared records, kept once made), with its size known before it is sent. A small
// answer becomes one Buffer; a big one is written part by part (http.ts), so that it
// is never also one giant string or one fresh giant Buffer, whose first writes fault
// in every page and cost more than the socket write itself.
export class Chunks {
  private readonly list: Array<string | Buffer> = [];
  /** Text since the last Buffer, joined in one go when the next one comes. */
  private text: string[] = [];

  push(...s: string[]): void {
    for (const x of s) this.text.push(x);
  }

  bytes(b: Buffer): void {
    this.flush();
    this.list.push(b);
  }

  /** Many small pieces are joined (each part written costs a call of its own); a long one
   * (a big JSON.stringify between a head and a tail) is kept as it is, not copied again. */
  private flush(): void {
    const t = this.text;
    if (t.length === 1 || t.some((s) => s.length > 65536)) for (const s of t) this.list.push(s);
    else if (t.length > 1) this.list.push(t.join(''));
    this.text = [];
  }

  /** The answer's parts, in order. */
  parts(): ReadonlyArray<string | Buffer> {
    this.flush();
    return this.list;
  }

  /** The answer's size in bytes. */
  size(): number {
    let n = 0;
    for (const p of this.parts()) n += typeof p === 'string' ? Buffer.byteLength(p) : p.length;
    return n;
  }

  toBuffer(): Buffer {
    const parts = this.parts();
    if (parts.length === 1) {
      const p = parts[0]!;
      return typeof p === 'string' ? Buffer.from(p) : p;
    }
    const out = Buffer.allocUnsafe(this.size());
    let at = 0;
    for (const p of parts) at += typeof p === 'string' ? out.write(p, at) : p.copy(out, at);
    return out;
  }
}
