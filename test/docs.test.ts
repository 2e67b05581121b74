// docs/api.md is generated from the datamodel and the handler table, and README.md quotes
// `xapid --help`: regenerating them must give exactly the committed files, so neither
// can go stale (`npm run docs` refreshes both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { classes } from '../src/datamodel/model.js';
import { handlers } from '../src/api/handlers.js';
import { tempDir } from './helpers/daemon.js';

interface ApiDocGenerator {
  renderApiDoc(): string;
  writeApiDoc(file?: string): string;
  cliHelp(): string;
  withHelp(readme: string, help: string): string;
}

// Compiled, this file is dist/test/docs.test.js; the generator stays in scripts/.
const generator = new URL('../../scripts/gen-api-doc.mjs', import.meta.url);
const committed = fileURLToPath(new URL('../../docs/api.md', import.meta.url));
const readme = fileURLToPath(new URL('../../README.md', import.meta.url));

function firstDifference(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) return `line ${i + 1}:\n  committed:   ${x[i] ?? '(end of file)'}\n  regenerated: ${y[i] ?? '(end of file)'}`;
  }
  return 'no difference';
}

test('docs/api.md is what scripts/gen-api-doc.mjs makes from the code', async (t) => {
  const gen = (await import(generator.href)) as ApiDocGenerator;
  const dir = tempDir('xapid-docs-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'api.md');
  const returned = gen.writeApiDoc(file);
  const fresh = readFileSync(file, 'utf8');
  assert.equal(fresh, returned);
  const old = readFileSync(committed, 'utf8');
  assert.ok(old === fresh, `docs/api.md is stale; run \`npm run docs\` and commit the result. First difference at ${firstDifference(old, fresh)}`);
});

test('README.md quotes the current `xapid --help` word for word', async () => {
  const gen = (await import(generator.href)) as ApiDocGenerator;
  const help = gen.cliHelp();
  assert.match(help, /^Usage: xapid/);
  const old = readFileSync(readme, 'utf8');
  const fresh = gen.withHelp(old, help);
  assert.ok(old === fresh, `README.md's options block is stale; run \`npm run docs\`. First difference at ${firstDifference(old, fresh)}`);
});

test('the reference has a section for every class and a row for every message', async () => {
  const gen = (await import(generator.href)) as ApiDocGenerator;
  const md = gen.renderApiDoc();
  for (const c of classes.values()) {
    assert.ok(md.includes(`\n## ${c.name}\n`), `no section for ${c.name}`);
    for (const m of c.messages.values()) {
      assert.ok(md.includes(`| \`${m.name}\` | \``), `no row for ${m.wireName}`);
    }
  }
});

test('every handler names a message of the datamodel (or the doc would miss it)', () => {
  for (const name of handlers.keys()) {
    const dot = name.indexOf('.');
    assert.ok(classes.get(name.slice(0, dot))?.messages.has(name.slice(dot + 1)), `handler ${name} matches no message`);
  }
});
