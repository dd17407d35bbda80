#!/usr/bin/env bash
# Restore benchmark: library vs `ctr containers restore`, see bench/restore.ts.
#   bash bench/run.sh [--n 20] [--warmup 2] [--json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
exec node dist/bench/restore.js "$@"
