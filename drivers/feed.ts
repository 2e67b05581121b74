// The domain change feed both drivers offer: listeners subscribe, the driver emits.
import type { DomainEvent } from './driver.js';

export class DomainFeed {
  private readonly listeners = new Set<(e: DomainEvent) => void>();

  subscribe(listener: (e: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener; one listener's failure is its own and does not stop the others. */
  emit(e: DomainEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        /* see above */
      }
    }
  }
}
