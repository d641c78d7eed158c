#!/usr/bin/env bash
# Installs kubectl-flagpole with krew from a local archive, as a user of a
# krew index would get it: builds krew (sigs.k8s.io/krew, from the Go module
# proxy, at KREW_VERSION), the release archive and krew manifest for this
# machine's platform (hack/release-plugin.sh), installs them into a new
# KREW_ROOT, and checks that kubectl (the pinned one, when built) runs the
# installed plugin as `kubectl flagpole`.
set -o errexit
set -o nounset
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${ROOT}"

KREW_VERSION="v0.4.3"
tools="${ROOT}/_output/tools/krew-${KREW_VERSION}"
if [[ ! -x "${tools}/krew" ]]; then
    GOBIN="${tools}" go install "sigs.k8s.io/krew/cmd/krew@${KREW_VERSION}"
fi

platform="$(go env GOOS)/$(go env GOARCH)"
PLATFORMS="${platform}" hack/release-plugin.sh >/dev/null
release="${ROOT}/_output/release"
archive="$(ls "${release}"/kubectl-flagpole_*_"${platform%/*}"_"${platform#*/}".tar.gz)"

krew_root="$(mktemp -d)"
trap 'rm -rf "${krew_root}"' EXIT
KREW_ROOT="${krew_root}" "${tools}/krew" install --no-update-index \
    --manifest="${release}/flagpole.yaml" --archive="${archive}" </dev/null

version="$(grep '^  version:' "${release}/flagpole.yaml" | awk '{print $2}')"
got="$("${krew_root}/bin/kubectl-flagpole" --version)"
if [[ "${got}" != "kubectl flagpole version ${version}" ]]; then
    echo "the installed plugin says \"${got}\", want version ${version}" >&2
    exit 1
fi
kubectl="${ROOT}/_output/tools/bin/kubectl"
if [[ -x "${kubectl}" ]]; then
    # Read whole, then searched: grep -q stops at the first match, and
    # under pipefail the writer's SIGPIPE (exit 141) would fail the check.
    plugins="$(PATH="${krew_root}/bin:${PATH}" "${kubectl}" plugin list 2>/dev/null)"
    if ! grep -q "${krew_root}/bin/kubectl-flagpole" <<<"${plugins}"; then
        echo "kubectl plugin list does not list ${krew_root}/bin/kubectl-flagpole:" >&2
        echo "${plugins}" >&2
        exit 1
    fi
    help="$(PATH="${krew_root}/bin:${PATH}" "${kubectl}" flagpole --help)"
    if ! grep -q "kubectl flagpole manages the feature flags" <<<"${help}"; then
        echo "kubectl flagpole --help does not describe the plugin:" >&2
        echo "${help}" >&2
        exit 1
    fi
fi
echo "krew ${KREW_VERSION} installed kubectl-flagpole ${version} from ${archive##*/}"
