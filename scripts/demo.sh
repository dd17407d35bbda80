#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, starts a
# private containerd, checkpoints a counting container, runs `pulumi up` on
# examples/restore-counter with a local backend, shows the restored process
# continuing its count, then `pulumi destroy`. Needs root (containerd, CRIU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .cache/env.sh
npm run --silent build
exec node dist/scripts/demo.js
