#!/usr/bin/env bash
# Where CRIU's time goes in a restore, per CRIU setting, library and ctr; see bench/criu-phases.ts.
#   bash bench/criu-phases.sh [--private-run] [--rounds 10] [--warmup 1] [--settings default,mntns-compat,...]
#                             [--keep-logs DIR] [--json] [--out FILE]
# --private-run runs the bench (and so its daemons, shims, runc and CRIU) in a mount namespace of its
# own with a fresh tmpfs on /run, where CRIU can keep its kernel-feature cache (/run/criu.kdat); this
# adds the "kdat-cache" setting. The host's /run is not touched; the namespace ends with the bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >/dev/null
. .cache/env.sh
npm run --silent build
private=0
args=()
for a in "$@"; do
  if [ "$a" = "--private-run" ]; then private=1; else args+=("$a"); fi
done
if [ "$private" = 1 ]; then
  exec unshare --mount --propagation private -- bash -c \
    'mount -t tmpfs -o mode=0755,size=64m criu-phases-run /run && CRIU_PHASES_PRIVATE_RUN=1 exec node dist/bench/criu-phases.js "$@"' \
    criu-phases "${args[@]}"
fi
exec node dist/bench/criu-phases.js "${args[@]}"
