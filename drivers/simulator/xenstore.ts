// The simulator's xenstore: one flat map of absolute paths, with watches. A write
// creates the parents (as xenstored does); a removal takes the whole subtree.

export class SimXenstore {
  private readonly data = new Map<string, string>();
  private readonly watches = new Set<{ path: string; listener: (path: string) => void }>();

  static norm(path: string): string {
    const p = `/${path.split('/').filter(Boolean).join('/')}`;
    return p;
  }

  read(path: string): string | undefined {
    return this.data.get(SimXenstore.norm(path));
  }

  write(path: string, value: string): void {
    const p = SimXenstore.norm(path);
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const parent = `/${parts.slice(0, i).join('/')}`;
      if (!this.data.has(parent)) this.data.set(parent, '');
    }
    if (this.data.get(p) === value) return;
    this.data.set(p, value);
    this.fire(p);
  }

  /** Every key strictly below `path`, relative to it, with its value. */
  list(path: string): Record<string, string> {
    const p = SimXenstore.norm(path);
    const prefix = p === '/' ? '/' : `${p}/`;
    const out: Record<string, string> = {};
    for (const [k, v] of this.data) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
    return out;
  }

  exists(path: string): boolean {
    return this.data.has(SimXenstore.norm(path));
  }

  remove(path: string): void {
    const p = SimXenstore.norm(path);
    let removed = this.data.delete(p);
    for (const k of [...this.data.keys()]) {
      if (k.startsWith(`${p}/`)) {
        this.data.delete(k);
        removed = true;
      }
    }
    if (removed) this.fire(p);
  }

  watch(path: string, listener: (path: string) => void): () => void {
    const w = { path: SimXenstore.norm(path), listener };
    this.watches.add(w);
    return () => this.watches.delete(w);
  }

  /** Entries for persistence. */
  entries(): Array<[string, string]> {
    return [...this.data];
  }

  load(entries: Array<[string, string]>): void {
    this.data.clear();
    for (const [k, v] of entries) this.data.set(k, v);
  }

  private fire(changed: string): void {
    for (const w of this.watches) {
      // A watch fires for changes at or below its path, and for the removal of a parent.
      if (changed === w.path || changed.startsWith(`${w.path}/`) || w.path.startsWith(`${changed}/`)) {
        const l = w.listener;
        queueMicrotask(() => l(changed));
      }
    }
  }
}
