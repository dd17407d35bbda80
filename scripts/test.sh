#!/usr/bin/env bash
# The whole test suite: installs what is missing (scripts/setup.sh), builds, then
# runs unit, integration and end-to-end tests with Node's test runner. Each test
# file starts its own private containerd (own root, state, socket, namespace)
# and stops it afterwards; the system containerd is never touched.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh test/unit       # one folder (or file) of test/
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests need root: they run containerd, runc and CRIU" >&2
  exit 1
fi
bash scripts/setup.sh
. .cache/env.sh
npm run --silent build

if [ $# -eq 0 ]; then set -- test/unit test/harness test/integration test/e2e; fi
files=()
for target in "$@"; do
  target="dist/${target%.ts}"
  if [ -d "$target" ]; then
    while IFS= read -r f; do files+=("$f"); done < <(find "$target" -name '*.test.js' | sort)
  else
    files+=("$target.js")
  fi
done
# Two cores: two test files at a time, each with its own daemon.
exec node --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
