#!/usr/bin/env node
/* global require, process, __dirname, console */
/* eslint-disable @typescript-eslint/no-require-imports -- plain CommonJS: runs before tsc */
// Builds caviar's optional native addon (the workers' `blas` compute backend, the shards'
// optimizer loops): `npm run build:native`, and at the end of `prepare`, so `npm install` /
// `npm ci` try it. It never fails the install: without a C++ compiler, node-addon-api or
// libopenblas-dev it prints one line and exits 0; workers then fall back to wasm and shards to
// their JS loops. CAVIAR_SKIP_NATIVE=1 skips it.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ADDON = path.join(__dirname, 'build', 'Release', 'caviar_native.node');
const HINT = 'install a C++ compiler and libopenblas-dev, then run `npm run build:native`';

function say(line) {
  console.log(`caviar: ${line}`);
}

/** node-gyp: a local install, else the copy bundled with the npm that runs this. */
function findNodeGyp() {
  const candidates = [];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency of caviar; npm bundles one
  }
  if (process.env.npm_execpath) {
    candidates.push(
      path.join(
        path.dirname(process.env.npm_execpath),
        '..',
        'node_modules',
        'node-gyp',
        'bin',
        'node-gyp.js',
      ),
    );
  }
  candidates.push(
    path.join(
      path.dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  );
  return candidates.find((p) => fs.existsSync(p));
}

/** The first line of compiler or linker output that says what went wrong. */
function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim());
  const hit =
    lines.find((l) => /fatal error|cannot find -l|undefined reference|not found/i.test(l)) ??
    lines.find((l) => /\berror\b/i.test(l) && !/^gyp (ERR|info)/.test(l)) ??
    lines.find((l) => /^gyp ERR! stack Error/.test(l));
  return (hit ?? 'node-gyp failed').replace(/^gyp ERR! stack /, '').slice(0, 200);
}

function main() {
  if (process.env.CAVIAR_SKIP_NATIVE === '1')
    return say('native addon build skipped (CAVIAR_SKIP_NATIVE=1)');
  try {
    require.resolve('node-addon-api');
  } catch {
    return say(`native addon not built: node-addon-api is not installed; ${HINT}`);
  }
  const gyp = findNodeGyp();
  if (!gyp) return say(`native addon not built: node-gyp not found; ${HINT}`);
  const args = [gyp, 'rebuild', '--release'];
  // Node's own headers, where this Node ships them, spare node-gyp a download (offline machines).
  const nodeDir = path.join(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h')))
    args.push(`--nodedir=${nodeDir}`);
  const run = spawnSync(process.execPath, args, {
    cwd: __dirname,
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (run.status !== 0 || !fs.existsSync(ADDON)) {
    const output = `${run.stdout ?? ''}\n${run.stderr ?? ''}\n${run.error ? run.error.message : ''}`;
    return say(`native addon not built (${firstError(output)}); workers use wasm; ${HINT}`);
  }
  try {
    const { core } = require(ADDON).config();
    say(`native addon built (blas backend on OpenBLAS, ${core} kernels; native optimizers)`);
  } catch (err) {
    say(`native addon built but does not load (${String(err.message).split('\n')[0]}); ${HINT}`);
  }
}

try {
  main();
} catch (err) {
  say(`native addon not built (${err && err.message ? err.message.split('\n')[0] : err}); ${HINT}`);
}
process.exitCode = 0;
