#!/usr/bin/env bash
# Where `pulumi preview` time goes through the CLI (gRPC log, provider CPU
# profile), see bench/pulumi-profile.ts.
#   bash bench/pulumi-profile.sh [--n 20] [--rounds 3] [--kinds restored-container,shell-out,empty]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
exec node dist/bench/pulumi-profile.js "$@"
