#!/usr/bin/env bash
# Pulumi benchmark: up / preview / destroy of RestoredContainers vs a shell-out
# dynamic provider vs raw ctr, through the CLI and the Automation API, see
# bench/pulumi.ts.
#   bash bench/pulumi.sh [--ns 1,10,20,50] [--rounds 2] [--drivers cli,automation] [--json] [--out FILE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
exec node dist/bench/pulumi.js "$@"
