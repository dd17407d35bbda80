#!/usr/bin/env bash
# The main job on the embedded default, as a user runs it: installs what is
# missing, starts a private containerd, checkpoints a counting container, then in
# examples/restore-counter runs `pulumi stack init`, `pulumi config set …`,
# `pulumi up` (the real CLI and Node language host, a local backend in a temp
# dir), shows the restored process continuing its count, then `pulumi destroy`.
# Needs root (containerd, CRIU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .cache/env.sh
npm run --silent build
exec node dist/scripts/demo.js
