#!/usr/bin/env bash
# Real-client compatibility suite of Weir: installs what is missing (pinned Python clients,
# kcat from apt, kafkajs from the lockfile), then runs pytest against the weir binary.
# Usage: tests/compat/run.sh [pytest args...]   (WEIR_BIN=path/to/weir to pick the binary)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

python3 -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"

if ! command -v kcat >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq kcat curl
fi

if [ ! -d "$HERE/kafkajs/node_modules/kafkajs" ]; then
    (cd "$HERE/kafkajs" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
fi

if [ -z "${WEIR_BIN:-}" ]; then
    if [ -x "$REPO/target/release/weir" ]; then
        WEIR_BIN="$REPO/target/release/weir"
    elif [ -x "$REPO/target/debug/weir" ]; then
        WEIR_BIN="$REPO/target/debug/weir"
    else
        echo "run.sh: no weir binary (set WEIR_BIN or cargo build -p weir)" >&2
        exit 1
    fi
fi
export WEIR_BIN

exec python3 -m pytest -q "$HERE" "$@"
