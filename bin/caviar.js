#!/usr/bin/env -S node --initial-old-space-size=128
'use strict';
// The TypeScript sources are compiled into dist/ by `npm install` (the prepare script).
// Role processes (`caviar coordinator | ps | worker`) start their own folder's entry point, so the
// client never imports a sibling role; everything else is the client CLI.
const path = require('node:path');
const roles = new Set(['coordinator', 'ps', 'worker']);
const role = process.argv[2];
const dist = path.join(__dirname, '..', 'dist');
if (roles.has(role)) {
  process.argv.splice(2, 1);
  require(path.join(dist, role, 'main.js'));
} else {
  require(path.join(dist, 'client', 'cli.js'));
}
