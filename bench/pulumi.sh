#!/usr/bin/env bash
# Pulumi benchmark: `pulumi up` / `pulumi preview` of RestoredContainers vs ctr
# and an empty stack, see bench/pulumi.ts.
#   bash bench/pulumi.sh [--n 20] [--up-rounds 3] [--preview-rounds 5] [--json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
exec node dist/bench/pulumi.js "$@"
