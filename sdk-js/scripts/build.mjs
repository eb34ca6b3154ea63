// Builds dist/: ESM entry points (index, core, videojs, hlsjs), a UMD bundle (global `Proctor`),
// and the type declarations (tsc). Prints the min+gzip size of each bundle.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
rmSync('dist', { recursive: true, force: true });

const common = { bundle: true, minify: true, sourcemap: true, target: 'es2020', legalComments: 'none' };
await build({
  ...common,
  entryPoints: {
    index: 'src/index.ts',
    core: 'src/core/index.ts',
    videojs: 'src/adapters/videojs.ts',
    hlsjs: 'src/adapters/hlsjs.ts',
  },
  outdir: 'dist',
  format: 'esm',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
});
await build({
  ...common,
  entryPoints: ['src/index.ts'],
  outfile: 'dist/proctor.umd.cjs',
  format: 'iife',
  globalName: '__proctor',
  banner: {
    js: "(function(root,factory){if(typeof define==='function'&&define.amd)define([],factory);else if(typeof module==='object'&&module.exports)module.exports=factory();else root.Proctor=factory();}(typeof self!=='undefined'?self:this,function(){",
  },
  footer: { js: 'return __proctor;}));' },
});
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--emitDeclarationOnly'], {
  stdio: 'inherit',
});

for (const f of ['dist/proctor.umd.cjs', 'dist/core.js']) {
  const b = readFileSync(f);
  console.log(`${f}: ${b.length} B min, ${gzipSync(b, { level: 9 }).length} B min+gzip`);
}
