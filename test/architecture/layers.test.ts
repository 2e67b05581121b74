// The layering of docs/architecture.md, enforced: dependency-cruiser runs the rules in
// .dependency-cruiser.cjs (services never import api/ or rpc/, core/ at the bottom, no
// import cycles, type-only imports included) over the project's sources, and over a small
// tree that breaks each rule, so that a rule that stopped biting fails here too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { tempDir } from '../helpers/daemon.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

async function violations(baseDir: string, dirs: string[]): Promise<IViolation[]> {
  const options: ICruiseOptions = { ...(await extractDepcruiseOptions(path.join(ROOT, '.dependency-cruiser.cjs'))), baseDir, validate: true };
  const tsConfig = extractTSConfig(path.join(ROOT, 'tsconfig.json'));
  const res = await cruise(dirs, options, undefined, { tsConfig });
  const out = res.output;
  assert.ok(typeof out === 'object', 'cruise answered a result object');
  assert.ok(out.summary.totalCruised > 0, 'something was cruised');
  return out.summary.violations;
}

const describe = (v: IViolation) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name).join(' → ')})` : ''}`;

test('the sources keep the layering: no service imports api/ or rpc/, core/ is at the bottom, no import cycles', async () => {
  const found = await violations(ROOT, ['src', 'drivers', 'storage-plugins']);
  assert.deepEqual(found.map(describe), []);
});

test('each rule catches a tree that breaks it', async (t) => {
  const dir = tempDir('xapid-layers-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (p: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), text);
  };
  file('tsconfig.json', '{}');
  file('src/api/vm.ts', "export const handlers = {};\n");
  file('src/rpc/codec.ts', "export const encode = (v: unknown) => String(v);\n");
  file('src/vm/service.ts', "import { handlers } from '../api/vm.js';\nexport const x = handlers;\n");
  file('src/storage/service.ts', "import { encode } from '../rpc/codec.js';\nexport const y = encode;\n");
  file('src/core/errors.ts', "import type { S } from '../network/a.js';\nexport type E = S;\n");
  // A cycle made of type-only imports counts too.
  file('src/network/a.ts', "import type { B } from './b.js';\nexport type S = string; export type A = B;\n");
  file('src/network/b.ts', "import type { A } from './a.js';\nexport type B = A | number;\n");
  file('drivers/xl/index.ts', "import type { E } from '../../src/core/errors.js';\nexport type D = E;\n");
  file('src/api/net.ts', "import { encode } from '../rpc/codec.js';\nexport const z = encode;\n");
  const found = (await violations(dir, ['src', 'drivers'])).map(describe).sort();
  const rules = new Set(found.map((d) => d.split(':')[0]));
  for (const rule of ['services-below-api', 'foundations-below-services', 'no-cycles', 'drivers-and-plugins-stand-alone', 'api-below-rpc']) {
    assert.ok(rules.has(rule), `${rule} is reported; found: ${found.join('; ')}`);
  }
  assert.ok(found.some((d) => d.startsWith('services-below-api: src/vm/service.ts → src/api/vm.ts')), found.join('; '));
  assert.ok(found.some((d) => d.startsWith('services-below-api: src/storage/service.ts → src/rpc/codec.ts')), found.join('; '));
  assert.ok(found.some((d) => d.startsWith('no-cycles: src/network/')), found.join('; '));
});
