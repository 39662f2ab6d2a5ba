#!/usr/bin/env bash
# Runs before `npm test`: installs what the tests need and is missing, and builds the project.
# The tests start their own servers (etcd, the caviar roles) on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

node -e 'const [major] = process.versions.node.split(".").map(Number); if (major < 20) { console.error("caviar needs Node.js 20 or newer, found " + process.version); process.exit(1); }'

apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# Membership and fault tests run against a real etcd (Debian's etcd-server, etcd 3.4).
if ! command -v etcd >/dev/null 2>&1; then
  echo "test setup: installing etcd-server (Debian)"
  apt_install etcd-server
fi

# The metrics tests run a real Prometheus and check the deploy files with promtool (Debian's
# prometheus package); the dashboard test drives Debian's chromium through playwright-core,
# which downloads no browser of its own.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The multi-host test bed (test/multihost/) builds hosts from network namespaces, veths and tc.
command -v tc >/dev/null 2>&1 || missing+=(iproute2)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test setup: installing ${missing[*]} (Debian)"
  apt_install "${missing[@]}"
fi

[ -d node_modules ] || npm install
