#!/usr/bin/env bash
# Transfer and checkpoint benchmark: copyCheckpoint vs `ctr images export | ctr images import`,
# checkpointContainer vs `ctr containers checkpoint`, on two private daemons; see bench/transfer.ts.
#   bash bench/transfer.sh [--baseline-rev REV] [--rounds 5] [--checkpoint-rounds 10] [--warmup 1] [--mem-mib 256]
#                          [--cpu-prof DIR] [--json]
# --baseline-rev REV builds that revision (git archive, into .cache/baseline/REV) and runs its
# copyCheckpoint as a third path "before", interleaved with this tree's and ctr's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline-rev)
      rev=$(git rev-parse --short "$2")
      dir=".cache/baseline/$rev"
      if [ ! -f "$dir/dist/bench/transfer.js" ]; then
        rm -rf "$dir" && mkdir -p "$dir"
        git archive "$rev" | tar -x -C "$dir"
        ln -s "$PWD/node_modules" "$dir/node_modules"
        (cd "$dir" && tsc -p tsconfig.json)
      fi
      args+=(--baseline "$PWD/$dir")
      shift 2
      ;;
    *) args+=("$1"); shift ;;
  esac
done
exec node dist/bench/transfer.js "${args[@]}"
