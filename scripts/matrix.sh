#!/usr/bin/env bash
# scripts/matrix.sh: the containerd and runc versions the tests run against,
# built from the Go module proxy and cached, keyed by version, under the cache
# root of the Pulumi CLI (${PULUMI_CLI_CACHE:-$HOME/.cache/pulumi-containerd-restore}):
#
#   containerd-v2.4.2/bin/{containerd,containerd-shim-runc-v2,ctr}
#   containerd-v1.7.35/bin/{containerd,containerd-shim-runc-v2,ctr}
#   runc-v1.5.3/bin/runc          (-tags seccomp, linked to Debian's libseccomp)
#
# Debian's containerd 1.6.20 and runc 1.1.5 (/usr/bin) are the default and are
# never built. A version's bin directory first on PATH selects it: containerd
# finds its shim on PATH, and the shim finds runc on PATH.
#
#   bash scripts/matrix.sh build-containerd 2.4.2   # idempotent; prints ok/installed
#   bash scripts/matrix.sh build-runc 1.5.3
#   bash scripts/matrix.sh bin-dir containerd 2.4.2 # prints the bin dir ("" for Debian's)
#
# scripts/setup.sh sources this file for the functions; it is not meant to be
# sourced by users.
set -euo pipefail

MATRIX_CACHE_ROOT="${PULUMI_CLI_CACHE:-${HOME:-/root}/.cache/pulumi-containerd-restore}"
# The versions Debian 12 ships (apt): selecting them means /usr/bin, nothing built.
DEBIAN_CONTAINERD_VERSION=1.6.20
DEBIAN_RUNC_VERSION=1.1.5
# The CI matrix (scripts/test.sh without arguments).
MATRIX_CONTAINERD_VERSIONS=(1.7.35 2.4.2)
MATRIX_RUNC_VERSIONS=(1.5.3)

_m_say() { printf '%s\n' "$*"; }
_m_die() { printf 'matrix: ERROR: %s\n' "$*" >&2; exit 1; }
_m_now() { date +%s; }
_m_go() {
  if [ -n "${GO:-}" ]; then printf '%s\n' "$GO"
  elif command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then printf '%s\n' /usr/local/go/bin/go
  else return 1
  fi
}
# _m_log NAME CMD...: CMD's output goes to $MATRIX_LOG_DIR/NAME.log; on failure its tail is printed.
_m_log() {
  local log="${MATRIX_LOG_DIR:-$MATRIX_CACHE_ROOT/logs}/$1.log" rc=0
  shift
  mkdir -p "$(dirname "$log")"
  printf '+ %s\n' "$*" >>"$log"
  "$@" >>"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf -- '--- last lines of %s (exit %s) ---\n' "$log" "$rc" >&2
    tail -n 30 "$log" >&2
    printf -- '---\n' >&2
  fi
  return "$rc"
}

# normalize_version V: "v2.4.2" -> "2.4.2"; refuses anything but X.Y.Z.
normalize_version() {
  local v="${1#v}"
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || _m_die "not a version: '$1' (want X.Y.Z, e.g. 2.4.2)"
  printf '%s\n' "$v"
}

# bin_dir containerd|runc VERSION: where that version's binaries live; empty for Debian's.
bin_dir() {
  local what="$1" v
  v="$(normalize_version "$2")"
  case "$what" in
    containerd) [ "$v" = "$DEBIAN_CONTAINERD_VERSION" ] && return 0 ;;
    runc) [ "$v" = "$DEBIAN_RUNC_VERSION" ] && return 0 ;;
    *) _m_die "bin_dir: containerd or runc, not '$what'" ;;
  esac
  printf '%s\n' "$MATRIX_CACHE_ROOT/$what-v$v/bin"
}

# The stamp says which version and Go built the binaries; a build is reused only when it matches.
_m_stamp_want() { printf '%s %s %s\n' "$1" "$2" "$("$(_m_go)" env GOVERSION 2>/dev/null || echo unknown-go)"; }

# build_containerd VERSION: containerd, containerd-shim-runc-v2 and ctr of VERSION.
build_containerd() {
  local v dir stamp want go t0 pkg moddir work ldflags
  v="$(normalize_version "$1")"
  dir="$(bin_dir containerd "$v")"
  if [ -z "$dir" ]; then _m_say "ok containerd $v (Debian's, /usr/bin)"; return 0; fi
  go="$(_m_go)" || _m_die "Go is needed to build containerd $v"
  stamp="$dir/.built"
  want="$(_m_stamp_want containerd "$v")"
  if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] &&
     [ -x "$dir/containerd" ] && [ -x "$dir/containerd-shim-runc-v2" ] && [ -x "$dir/ctr" ]; then
    _m_say "ok containerd $v $dir"; return 0
  fi
  _m_say "building containerd $v with Go (cold: 2-4 minutes; log ${MATRIX_LOG_DIR:-$MATRIX_CACHE_ROOT/logs}/containerd-$v.log)"
  t0="$(_m_now)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  case "$v" in
    1.*) pkg=github.com/containerd/containerd ;;
    2.*) pkg=github.com/containerd/containerd/v2 ;;
    *) _m_die "containerd $v: only 1.x and 2.x are known" ;;
  esac
  # As containerd's Makefile does, so `containerd --version` and the Version service say v$v.
  ldflags="-s -w -X $pkg/version.Version=v$v"
  if [ "${v%%.*}" -ge 2 ]; then
    _m_log "containerd-$v" env GOTOOLCHAIN=local GOBIN="$dir.tmp" "$go" install -trimpath -ldflags "$ldflags" \
      "$pkg/cmd/containerd@v$v" "$pkg/cmd/containerd-shim-runc-v2@v$v" "$pkg/cmd/ctr@v$v" ||
      _m_die "building containerd $v failed"
  else
    # `go install pkg@v1.7.x` is refused: 1.7's go.mod has exclude directives. Build
    # inside a writable copy of the module instead (its go.mod and go.sum then apply).
    moddir="$(cd / && GOTOOLCHAIN=local "$go" mod download -json "$pkg@v$v" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -n "$moddir" ] && [ -d "$moddir" ] || _m_die "go mod download $pkg@v$v gave no module directory"
    work="$MATRIX_CACHE_ROOT/containerd-v$v/src"
    rm -rf "$work" && mkdir -p "$(dirname "$work")" && cp -r "$moddir" "$work" && chmod -R u+w "$work"
    (cd "$work" && _m_log "containerd-$v" env GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" GOBIN="$dir.tmp" "$go" install -trimpath \
      -ldflags "$ldflags" ./cmd/containerd ./cmd/containerd-shim-runc-v2 ./cmd/ctr) || _m_die "building containerd $v failed"
    rm -rf "$work"
  fi
  "$dir.tmp/containerd" --version | grep -q "v$v" || _m_die "the built containerd says '$("$dir.tmp/containerd" --version)', not v$v"
  printf '%s\n' "$want" >"$dir.tmp/.built"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  _m_say "installed containerd $v $dir (go install, $(( $(_m_now) - t0 ))s)"
}

# build_runc VERSION: runc with seccomp (needs libseccomp-dev and gcc; cgo).
build_runc() {
  local v dir stamp want go t0
  v="$(normalize_version "$1")"
  dir="$(bin_dir runc "$v")"
  if [ -z "$dir" ]; then _m_say "ok runc $v (Debian's, /usr/bin)"; return 0; fi
  go="$(_m_go)" || _m_die "Go is needed to build runc $v"
  stamp="$dir/.built"
  want="$(_m_stamp_want runc "$v")"
  if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] && [ -x "$dir/runc" ]; then
    _m_say "ok runc $v $dir"; return 0
  fi
  _m_say "building runc $v with Go (log ${MATRIX_LOG_DIR:-$MATRIX_CACHE_ROOT/logs}/runc-$v.log)"
  t0="$(_m_now)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  _m_log "runc-$v" env GOTOOLCHAIN=local CGO_ENABLED=1 GOBIN="$dir.tmp" "$go" install -trimpath -tags seccomp \
    -ldflags "-s -w -X main.version=$v" "github.com/opencontainers/runc@v$v" || _m_die "building runc $v failed"
  "$dir.tmp/runc" --version | grep -q "libseccomp" || _m_die "the built runc $v is not linked to libseccomp: $("$dir.tmp/runc" --version)"
  printf '%s\n' "$want" >"$dir.tmp/.built"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  _m_say "installed runc $v $dir (go install, $(( $(_m_now) - t0 ))s)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    build-containerd) build_containerd "${2:?version}" ;;
    build-runc) build_runc "${2:?version}" ;;
    bin-dir) bin_dir "${2:?containerd or runc}" "${3:?version}" ;;
    *) echo "usage: $0 build-containerd VERSION | build-runc VERSION | bin-dir containerd|runc VERSION" >&2; exit 2 ;;
  esac
fi
