// Filesystem figures shared by the directory-backed plugins.
import { statfsSync, statSync } from 'node:fs';

export interface FsFigures { size: number; used: number; available: number }

export function fsFigures(dir: string): FsFigures {
  const s = statfsSync(dir);
  return { size: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, available: s.bavail * s.bsize };
}

/** Bytes a file really occupies on disk (sparse holes excluded). */
export function allocated(file: string): number {
  return statSync(file).blocks * 512;
}
