#!/usr/bin/env bash
# The test suite: installs what is missing (scripts/setup.sh), builds, then runs
# unit, harness, integration and end-to-end tests with Node's test runner. Each
# test file starts its own private containerd (own root, state, socket,
# namespace) and stops it afterwards; the system containerd is never touched.
#
#   bash scripts/test.sh                 # the CI matrix (below), then a table
#   bash scripts/test.sh test/unit       # one folder (or file) of test/, on the default
#   CONTAINERD_VERSION=2.4.2 RUNC_VERSION=1.5.3 bash scripts/test.sh test/integration
#                                        # one leg: that containerd and runc (built by setup)
#
# The matrix (no arguments, no CONTAINERD_VERSION / RUNC_VERSION set):
#   containerd 1.6.20 (Debian) + runc 1.1.5 (Debian): everything
#   containerd 1.7.35 + runc 1.5.3: integration and e2e
#   containerd 2.4.2  + runc 1.5.3: integration and e2e
#   containerd 1.6.20 + runc 1.5.3: integration and e2e
# Each leg's output streams as it runs (and goes to .cache/test-logs/); at the end a
# table of version x passed/failed, then the totals in the test runner's own
# summary form. The exit code is non-zero when any leg failed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests need root: they run containerd, runc and CRIU" >&2
  exit 1
fi

# Two cores: two test files at a time, each with its own daemon.
NODE_TEST=(node --test --test-concurrency=2 --test-timeout=600000)

# test_files TARGET...: the compiled test files for folders or files of test/.
test_files() {
  local target f
  for target in "$@"; do
    target="dist/${target%.ts}"
    if [ -d "$target" ]; then
      while IFS= read -r f; do printf '%s\n' "$f"; done < <(find "$target" -name '*.test.js' | sort)
    else
      printf '%s\n' "$target.js"
    fi
  done
}

# check_selected: the containerd and runc on PATH are the ones .cache/env.sh selected.
check_selected() {
  local cv rv
  cv="$(containerd --version | awk '{print $3}')"; cv="${cv#v}"
  rv="$(runc --version | awk 'NR == 1 {print $3}')"
  case "$cv" in "$PCR_CONTAINERD_VERSION"|"$PCR_CONTAINERD_VERSION"[~+-]*) ;; *)
    echo "test.sh: containerd on PATH ($(command -v containerd)) is $cv, not the selected $PCR_CONTAINERD_VERSION" >&2; return 1 ;; esac
  case "$rv" in "$PCR_RUNC_VERSION"|"$PCR_RUNC_VERSION"[~+-]*) ;; *)
    echo "test.sh: runc on PATH ($(command -v runc)) is $rv, not the selected $PCR_RUNC_VERSION" >&2; return 1 ;; esac
  echo "containerd $PCR_CONTAINERD_VERSION ($(command -v containerd)), runc $PCR_RUNC_VERSION ($(command -v runc))"
}

if [ $# -gt 0 ] || [ -n "${CONTAINERD_VERSION:-}" ] || [ -n "${RUNC_VERSION:-}" ]; then
  # One leg: the selected versions (default Debian's), the given targets (default all).
  bash scripts/setup.sh
  . .cache/env.sh
  check_selected
  npm run --silent build
  if [ $# -eq 0 ]; then set -- test/unit test/harness test/integration test/e2e; fi
  mapfile -t files < <(test_files "$@")
  exec "${NODE_TEST[@]}" "${files[@]}"
fi

# ---- the matrix ------------------------------------------------------------------
SETUP_MATRIX=1 bash scripts/setup.sh
. .cache/env.sh
npm run --silent build
LOG_DIR=.cache/test-logs
mkdir -p "$LOG_DIR"

# containerd runc targets...
LEGS=(
  "1.6.20 1.1.5 test/unit test/harness test/integration test/e2e"
  "1.7.35 1.5.3 test/integration test/e2e"
  "2.4.2 1.5.3 test/integration test/e2e"
  "1.6.20 1.5.3 test/integration test/e2e"
)
ROWS=()
FAILED=0
T_ALL=0; P_ALL=0; F_ALL=0; C_ALL=0; S_ALL=0
T0_ALL="$(date +%s)"
for leg in "${LEGS[@]}"; do
  read -r cv rv targets <<<"$leg"
  # shellcheck disable=SC2086
  mapfile -t files < <(test_files $targets)
  log="$LOG_DIR/containerd-$cv-runc-$rv.log"
  printf '\n==== containerd %s, runc %s: %s ====\n' "$cv" "$rv" "$targets"
  t0="$(date +%s)"
  rc=0
  (
    export CONTAINERD_VERSION="$cv" RUNC_VERSION="$rv"
    . .cache/env.sh
    check_selected
    exec "${NODE_TEST[@]}" "${files[@]}"
  ) 2>&1 | tee "$log" || rc=$?
  secs=$(( $(date +%s) - t0 ))
  # The runner's closing summary: "ℹ pass N" (spec reporter) or "# pass N" (tap).
  count() { { grep -aE "^(ℹ|#) $1 [0-9]+$" "$log" || true; } | tail -n 1 | awk '{print $3}'; }
  tests="$(count tests)"; pass="$(count pass)"; fail="$(count fail)"; cancelled="$(count cancelled)"; skipped="$(count skipped)"
  if [ -z "$tests" ]; then [ "$rc" -ne 0 ] || rc=1; tests=0; pass=0; fail=0; cancelled=0; skipped=0; fi
  [ "$rc" -eq 0 ] || FAILED=1
  T_ALL=$((T_ALL + tests)); P_ALL=$((P_ALL + pass)); F_ALL=$((F_ALL + fail)); C_ALL=$((C_ALL + cancelled)); S_ALL=$((S_ALL + skipped))
  scope="all"; [ "$targets" = "test/integration test/e2e" ] && scope="integration+e2e"
  ROWS+=("$(printf '%-11s %-7s %-16s %6s %6s %6s %9s %7s %6ss  %s' "$cv" "$rv" "$scope" "$tests" "$pass" "$fail" "$cancelled" "$skipped" "$secs" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc, $log)")")")
done

printf '\n==== matrix: containerd x runc (%ss) ====\n' "$(( $(date +%s) - T0_ALL ))"
printf '%-11s %-7s %-16s %6s %6s %6s %9s %7s %7s  %s\n' containerd runc suites tests passed failed cancelled skipped time result
for row in "${ROWS[@]}"; do printf '%s\n' "$row"; done
# Totals over every leg, in the test runner's own summary form.
printf 'ℹ tests %s\nℹ pass %s\nℹ fail %s\nℹ cancelled %s\nℹ skipped %s\n' "$T_ALL" "$P_ALL" "$F_ALL" "$C_ALL" "$S_ALL"
exit "$FAILED"
