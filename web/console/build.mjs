// Builds the console's assets into pkg/console/assets/dist, which the Go
// binary embeds: one bundle (app.js, Preact included), the stylesheet and
// the page. The output depends only on the sources and the versions the
// lockfile pins: hack/verify-console.sh rebuilds it and compares.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.env.CONSOLE_OUT_DIR || join(here, '..', '..', 'pkg', 'console', 'assets', 'dist');
mkdirSync(out, { recursive: true });
// Preact's MIT license asks for its notice in copies: the bundle carries it.
const preact = JSON.parse(readFileSync(join(here, 'node_modules', 'preact', 'package.json'), 'utf8'));
const license = readFileSync(join(here, 'node_modules', 'preact', 'LICENSE'), 'utf8').trim();
await esbuild.build({
  entryPoints: [join(here, 'src', 'main.jsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'eof',
  banner: { js: `/*! Flagpole console. Includes Preact ${preact.version} (https://preactjs.com):\n${license}\n*/` },
  charset: 'utf8',
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(join(here, 'src', f), join(out, f));
