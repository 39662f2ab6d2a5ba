#!/usr/bin/env bash
# Runs before `npm test`: makes sure what the tests need is installed and built.
set -euo pipefail
cd "$(dirname "$0")/.."
node -e 'const [major] = process.versions.node.split(".").map(Number); if (major < 20) { console.error("caviar needs Node.js 20 or newer, found " + process.version); process.exit(1); }'
[ -d node_modules ] || npm install
