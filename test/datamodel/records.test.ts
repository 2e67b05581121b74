// The committed record types must be what the datamodel generates today.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

test('src/datamodel/records.ts matches the datamodel (regenerate with scripts/gen-records.mjs)', async () => {
  const gen = (await import(new URL('../../../scripts/gen-records.mjs', import.meta.url).href)) as { recordsSource(): Promise<string> };
  const committed = readFileSync(new URL('../../../src/datamodel/records.ts', import.meta.url), 'utf8');
  assert.equal(committed, await gen.recordsSource());
});
