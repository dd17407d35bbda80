#!/usr/bin/env bash
# Large-checkpoint restore benchmark: library vs `ctr containers restore` at 64 MiB–1 GiB, see bench/large.ts.
#   bash bench/large.sh [--sizes 64,256,1024] [--rounds 3] [--warmup 1] [--json] [--out FILE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
exec node dist/bench/large.js "$@"
