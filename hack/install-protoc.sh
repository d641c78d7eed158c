#!/usr/bin/env bash
# Makes the protoc that hack/update-codegen.sh generates protobuf with
# available, and prints its path.
#
# The committed generated.pb.go files were made with Debian 12's
# protobuf-compiler (protoc 3.21.12); another protoc may write other output,
# so update-codegen.sh accepts no other version. A protoc of that version on
# PATH is used as it is; otherwise this script installs Debian's package with
# apt-get (as root, or through sudo) and uses /usr/bin/protoc. Where that is
# impossible it says so and fails.
set -o errexit
set -o nounset
set -o pipefail

# What the protoc must report. Debian 12's protobuf-compiler has shipped it
# as 3.21.12-3 and, since a security update, 3.21.12-3+deb12u1 (the same
# protoc); the archive keeps only the newest, so the package is installed
# at whatever revision Debian 12 offers and the protoc it brings is checked.
FLAGPOLE_PROTOC_VERSION="3.21.12"
FLAGPOLE_PROTOC_DEB_VERSION="3.21.12-3*"

protoc_version() {
    "$1" --version 2>/dev/null | sed -n 's/^libprotoc //p'
}

# protoc_ok PATH: PATH is a protoc of the expected version.
protoc_ok() {
    [[ -x "$1" && "$(protoc_version "$1")" == "${FLAGPOLE_PROTOC_VERSION}" ]]
}

find_protoc() {
    local p
    for p in "$(command -v protoc || true)" /usr/bin/protoc; do
        if [[ -n "${p}" ]] && protoc_ok "${p}"; then
            echo "${p}"
            return 0
        fi
    done
    return 1
}

if find_protoc; then
    exit 0
fi

found="$(command -v protoc || true)"
if [[ -n "${found}" ]]; then
    echo "install-protoc: ${found} is protoc $(protoc_version "${found}"); generating needs protoc ${FLAGPOLE_PROTOC_VERSION} (Debian 12 protobuf-compiler ${FLAGPOLE_PROTOC_DEB_VERSION}); installing that into /usr/bin" >&2
fi

if ! command -v apt-get >/dev/null; then
    echo "install-protoc: protoc ${FLAGPOLE_PROTOC_VERSION} is needed and there is no apt-get to install Debian's protobuf-compiler ${FLAGPOLE_PROTOC_DEB_VERSION}." >&2
    echo "install-protoc: install protoc ${FLAGPOLE_PROTOC_VERSION} yourself (it must print 'libprotoc ${FLAGPOLE_PROTOC_VERSION}') and put it on PATH, or run hack/update-codegen.sh in a Debian 12 container." >&2
    exit 1
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "install-protoc: protoc ${FLAGPOLE_PROTOC_VERSION} is needed; installing Debian's protobuf-compiler needs root, and this is neither root nor allowed sudo without a password." >&2
        echo "install-protoc: run: sudo apt-get install -y protobuf-compiler=${FLAGPOLE_PROTOC_DEB_VERSION}   (then run hack/update-codegen.sh again)" >&2
        exit 1
    fi
fi

echo "install-protoc: apt-get install protobuf-compiler=${FLAGPOLE_PROTOC_DEB_VERSION}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet, or stale ones.
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "protobuf-compiler=${FLAGPOLE_PROTOC_DEB_VERSION}" >&2; then
    "${sudo[@]}" apt-get update >&2
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "protobuf-compiler=${FLAGPOLE_PROTOC_DEB_VERSION}" >&2; then
        echo "install-protoc: apt-get could not install protobuf-compiler=${FLAGPOLE_PROTOC_DEB_VERSION} (not Debian 12?). Install protoc ${FLAGPOLE_PROTOC_VERSION} yourself and put it on PATH." >&2
        exit 1
    fi
fi

if protoc_ok /usr/bin/protoc; then
    echo /usr/bin/protoc
    exit 0
fi
echo "install-protoc: /usr/bin/protoc reports '$(/usr/bin/protoc --version 2>&1)' after installing protobuf-compiler=${FLAGPOLE_PROTOC_DEB_VERSION}; expected libprotoc ${FLAGPOLE_PROTOC_VERSION}" >&2
exit 1
