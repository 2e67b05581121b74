// No source module over about 400 lines unless it is one job that reads better whole
// (docs/architecture.md lists the exceptions and why). A module that grows past the
// limit is split by job, or added below with its reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const LIMIT = 400;

/** Longer modules, each one job. */
const EXCEPTIONS: Record<string, string> = {
  'src/datamodel/records.ts': 'generated record types (scripts/gen-records.mjs)',
  'src/datamodel/errors.ts': 'the generated table of error codes and their parameters',
};

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

test(`source modules stay under ${LIMIT} lines, apart from the listed exceptions`, () => {
  const long = ['src', 'drivers', 'storage-plugins']
    .flatMap(sources)
    .map((f) => [f, readFileSync(path.join(ROOT, f), 'utf8').split('\n').length - 1] as const)
    .filter(([f, n]) => n > LIMIT && !(f in EXCEPTIONS))
    .map(([f, n]) => `${f} (${n} lines)`);
  assert.deepEqual(long, []);
  for (const f of Object.keys(EXCEPTIONS)) assert.ok(sources(path.dirname(f)).includes(f), `${f} is listed but does not exist`);
});
