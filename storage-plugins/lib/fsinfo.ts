// Filesystem figures shared by the directory-backed plugins.
import { statfsSync, statSync } from 'node:fs';
import { Codes, PluginError } from './protocol.js';

export interface FsFigures { size: number; used: number; available: number }

export function fsFigures(dir: string): FsFigures {
  const s = statfsSync(dir);
  return { size: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, available: s.bavail * s.bsize };
}

/** Bytes a file really occupies on disk (sparse holes excluded). */
export function allocated(file: string): number {
  return statSync(file).blocks * 512;
}

/** Refuses a location that does not exist or is not a directory, with the SM error codes. */
export function checkDir(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new PluginError(Codes.SR_UNAVAILABLE, `location ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new PluginError(Codes.INVALID_CONFIG, `location ${dir} is not a directory`);
}
