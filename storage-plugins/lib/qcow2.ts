// Reads the few qcow2 header fields the file plugin needs (virtual size, backing file)
// straight from the image, without starting qemu-img.
import { openSync, readSync, closeSync } from 'node:fs';

export interface Qcow2Header { virtualSize: number; backingFile?: string }

export function readQcow2Header(file: string): Qcow2Header {
  const fd = openSync(file, 'r');
  try {
    const h = Buffer.alloc(32);
    if (readSync(fd, h, 0, 32, 0) < 32 || h.readUInt32BE(0) !== 0x514649fb) throw new Error(`${file} is not a qcow2 image`);
    const backingOffset = Number(h.readBigUInt64BE(8));
    const backingSize = h.readUInt32BE(16);
    const virtualSize = Number(h.readBigUInt64BE(24));
    let backingFile: string | undefined;
    if (backingOffset > 0 && backingSize > 0 && backingSize < 4096) {
      const b = Buffer.alloc(backingSize);
      readSync(fd, b, 0, backingSize, backingOffset);
      backingFile = b.toString('utf8');
    }
    return { virtualSize, backingFile };
  } finally {
    closeSync(fd);
  }
}
