#!/usr/bin/env bash
# Installs the Debian packages the tests drive, when they are missing:
# Chromium for the browser tests (test/browser drives it with
# playwright-core, never with a browser playwright downloads) and
# Prometheus for the rollout plan guards (test/integration starts its own
# server on a free port, never the packaged service). Needs root (CI runs
# as root) and the Debian archive.
set -o errexit
set -o nounset
set -o pipefail

declare -A binaries=([chromium]=/usr/bin/chromium [prometheus]=/usr/bin/prometheus)
missing=()
for pkg in "${!binaries[@]}"; do
    [[ -x "${binaries[${pkg}]}" ]] || missing+=("${pkg}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ "$(id -u)" != "0" ]]; then
    echo "hack/install-debian-tools.sh: ${missing[*]} missing, and installing needs root: run  apt-get install ${missing[*]}  as root" >&2
    exit 1
fi
# The packages' services must not start (there is no init here to run
# them, and the tests start their own): policy-rc.d refuses, as in images.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e "${policy}" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"${policy}"
    chmod +x "${policy}"
    made_policy=1
fi
trap '[[ -n "${made_policy}" ]] && rm -f "${policy}"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
    "${binaries[${pkg}]}" --version 2>&1 | head -1
done
