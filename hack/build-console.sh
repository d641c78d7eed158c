#!/usr/bin/env bash
# Builds the console's front-end (web/console) into pkg/console/assets/dist,
# which kubectl-flagpole embeds: npm ci installs exactly what
# web/console/package-lock.json pins, then esbuild bundles. The built
# assets are committed, so a Go build needs no Node.js;
# hack/verify-console.sh checks they are what this script makes.
# CONSOLE_OUT_DIR builds elsewhere (the verify script's temporary copy).
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}/web/console"
npm ci --no-audit --no-fund --loglevel=error
node build.mjs
