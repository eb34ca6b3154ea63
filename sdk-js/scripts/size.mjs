// Measures the bundles as a page would load them: each entry bundled alone, minified, gzip -9.
// `node scripts/size.mjs [--max-core-bytes 25600]` exits non-zero if the core is over budget.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entries = [
  ['core (no DOM: protocol, outbox, reconnect, guard, session, tamper)', 'src/core/index.ts'],
  ['full browser SDK (core + platform + UI + camera; the UMD bundle)', 'src/index.ts'],
  ['video.js adapter', 'src/adapters/videojs.ts'],
  ['hls.js adapter', 'src/adapters/hlsjs.ts'],
];
const rows = [];
for (const [name, entry] of entries) {
  const r = await build({
    entryPoints: [join(root, entry)],
    bundle: true,
    minify: true,
    write: false,
    format: 'esm',
    target: 'es2020',
    legalComments: 'none',
  });
  const code = r.outputFiles[0].contents;
  rows.push({ name, min: code.length, gz: gzipSync(code, { level: 9 }).length });
}
const kb = (n) => (n / 1024).toFixed(1);
console.log('| bundle | min | min+gzip |\n|---|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${kb(r.min)} KB | ${kb(r.gz)} KB |`);
const i = process.argv.indexOf('--max-core-bytes');
if (i >= 0 && rows[0].gz > Number(process.argv[i + 1])) {
  console.error(`the core is ${rows[0].gz} B min+gzip, over the budget of ${process.argv[i + 1]} B`);
  process.exit(1);
}
