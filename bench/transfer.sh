#!/usr/bin/env bash
# Transfer and checkpoint benchmark: copyCheckpoint vs `ctr images export | ctr images import`,
# checkpointContainer vs `ctr containers checkpoint`, on two private daemons; see bench/transfer.ts.
#   bash bench/transfer.sh [--rounds 5] [--checkpoint-rounds 10] [--warmup 1] [--mem-mib 256] [--json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
exec node dist/bench/transfer.js "$@"
