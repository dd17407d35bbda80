#!/usr/bin/env bash
# scripts/setup.sh: install what this repo needs on a Debian 12 (bookworm) host,
# and skip whatever is already there. It is idempotent, and a warm run takes
# about a second. It prints one line per component: "ok ...", "installed ...",
# "skip ..." or "warn ...". Long output from apt, make, npm and go goes to
# .cache/setup-logs/; if a step fails, the end of its log is printed.
#
# CONVENTION: run it, then source the env file it writes:
#     bash scripts/setup.sh && . .cache/env.sh
# .cache/env.sh (gitignored) puts the Pulumi CLI cache bin, node_modules/.bin
# (Node 24) and /usr/local/sbin (CRIU 4) first on PATH. It also exports
# PULUMI_CLI_BIN, PULUMI_SKIP_UPDATE_CHECK=true and
# PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true.
# `. scripts/setup.sh` from bash does the same thing: it runs the script in a
# child bash (so `set -euo pipefail` does not leak into your shell) and then
# sources .cache/env.sh.
#
# Needs root, or passwordless sudo, only when something has to be installed.
#
# Components:
#   a. apt: containerd runc iptables busybox-static iproute2 (CRIU calls `ip`
#      when it dumps a network namespace).
#   b. CRIU 4.1.1 at /usr/local/sbin/criu, built from Debian trixie's upstream
#      tarball (fetched through a deb-src-only trixie entry), because
#      bookworm's CRIU 3.17 fails `criu check` on this kernel.
#   c. node_modules (`npm ci` with the machine's npm), with Node 24 at
#      node_modules/.bin/node (the npm devDependency `node`).
#   d. Pulumi CLI v3.274.1, built with Go from scripts/pulumi-cli into
#      ${PULUMI_CLI_CACHE:-$HOME/.cache/pulumi-containerd-restore}/pulumi-v3.274.1/bin,
#      plus pulumi-resource-pulumi-nodejs and, only where it can be resolved,
#      pulumi-language-nodejs.
#   f. containerd / runc versions other than Debian's (CONTAINERD_VERSION,
#      RUNC_VERSION, SETUP_MATRIX below), built once by scripts/matrix.sh into
#      ${PULUMI_CLI_CACHE:-$HOME/.cache/pulumi-containerd-restore}/{containerd,runc}-vX.Y.Z/bin.
#
# Knobs (environment variables):
#   PULUMI_CLI_CACHE  cache root for the Pulumi CLI (default ~/.cache/pulumi-containerd-restore)
#   CRIU_CACHE        where the CRIU tarball is kept (default ~/.cache/pulumi-containerd-restore/criu)
#   GO                Go binary (default: `go` on PATH, else /usr/local/go/bin/go)
#   PULUMI_LANGUAGE_NODEJS_VERSION  pseudo-version or commit of
#                     github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
#                     to build (by default it is derived from pkg/v3's Origin.Hash, if the proxy reports one;
#                     the proxy this was written against reports none, and it answers 403 for
#                     commit queries, so by default the language host is skipped). The version
#                     must also be known to the Go checksum DB, unless GONOSUMDB covers it.
#                     A wrapper module committed at scripts/pulumi-language-nodejs/ (go.mod,
#                     go.sum, tools.go) is used instead, when there is one.
#   SETUP_SKIP_LANGUAGE_NODEJS=1    do not try to build pulumi-language-nodejs
#   CONTAINERD_VERSION  containerd to select (default 1.6.20, Debian's); any other
#                     1.7.x or 2.x is built with Go (scripts/matrix.sh) under
#                     $PULUMI_CLI_CACHE/containerd-vX.Y.Z/bin, once.
#   RUNC_VERSION      runc to select (default 1.1.5, Debian's); others are built
#                     with -tags seccomp (needs libseccomp-dev, installed here)
#                     under $PULUMI_CLI_CACHE/runc-vX.Y.Z/bin.
#   SETUP_MATRIX=1    also build every version of the CI matrix (scripts/test.sh
#                     without arguments sets it): containerd 1.7.35 and 2.4.2, runc 1.5.3.
#   .cache/env.sh puts the selected versions' bin directories first on PATH; it
#   honours CONTAINERD_VERSION / RUNC_VERSION when it is sourced, too, for any
#   version already built (e.g. `CONTAINERD_VERSION=2.4.2 . .cache/env.sh`).

# ---- sourced? run in a child bash, then load the env file -------------------
if [ -n "${BASH_SOURCE[0]:-}" ] && [ "${BASH_SOURCE[0]}" != "$0" ]; then
  _pcr_setup="${BASH_SOURCE[0]}"
  if bash "$_pcr_setup" "$@"; then
    # shellcheck source=/dev/null
    . "$(cd "$(dirname "$_pcr_setup")/.." && pwd)/.cache/env.sh"
    unset _pcr_setup
    return 0
  fi
  unset _pcr_setup
  return 1
fi

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME="${HOME:-/root}"
CACHE_ROOT="${PULUMI_CLI_CACHE:-$HOME/.cache/pulumi-containerd-restore}"
CRIU_CACHE="${CRIU_CACHE:-$HOME/.cache/pulumi-containerd-restore/criu}"
LOG_DIR="$REPO/.cache/setup-logs"
ENV_FILE="$REPO/.cache/env.sh"

APT_PKGS=(containerd runc iptables busybox-static iproute2)

CRIU_VERSION=4.1.1
CRIU_TARBALL="criu_${CRIU_VERSION}.orig.tar.xz"
CRIU_SHA256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
CRIU_BIN=/usr/local/sbin/criu
# libprotobuf-dev ships google/protobuf/descriptor.proto, which images/opts.proto
# imports (protobuf-compiler only Recommends it). build-essential brings
# dpkg-dev, which `apt-get source` may want.
CRIU_BUILD_DEPS=(libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev python3-protobuf
  libnl-3-dev libnet1-dev libcap-dev pkg-config libbsd-dev libgnutls28-dev libnftables-dev
  uuid-dev libdrm-dev build-essential gcc make xz-utils)
TRIXIE_SRC_LIST=/etc/apt/sources.list.d/pulumi-containerd-restore-trixie-src.sources

PULUMI_VERSION=v3.274.1
PULUMI_BIN_DIR="$CACHE_ROOT/pulumi-$PULUMI_VERSION/bin"
PULUMI_LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
LANGHOST_MOD=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3

export DEBIAN_FRONTEND=noninteractive
export PULUMI_SKIP_UPDATE_CHECK=true
# CRIU 4 lives in /usr/local/sbin and must come before Debian's /usr/sbin/criu.
case ":$PATH:" in *:/usr/local/sbin:*) ;; *) PATH="/usr/local/sbin:$PATH" ;; esac
export PATH

mkdir -p "$LOG_DIR" "$CACHE_ROOT"
# shellcheck source=scripts/matrix.sh
. "$REPO/scripts/matrix.sh"
MATRIX_LOG_DIR="$LOG_DIR"
SEL_CONTAINERD="$(normalize_version "${CONTAINERD_VERSION:-$DEBIAN_CONTAINERD_VERSION}")"
SEL_RUNC="$(normalize_version "${RUNC_VERSION:-$DEBIAN_RUNC_VERSION}")"
# Keep the previous run's logs as *.log.prev; this run writes fresh *.log.
for _log in "$LOG_DIR"/*.log; do [ -e "$_log" ] && mv -f "$_log" "$_log.prev"; done

# ---- helpers ------------------------------------------------------------------
say()  { printf '%s\n' "$*"; }
warn() { printf 'warn %s\n' "$*" >&2; }
die()  { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
now()  { date +%s; }

# run_logged LOGNAME CMD...: run CMD with its output in $LOG_DIR/LOGNAME.log.
# On failure, print the end of the log and return the command's status.
# With RUN_LOGGED_QUIET=1 in its environment, a failure prints nothing.
run_logged() {
  local log="$LOG_DIR/$1.log" rc=0
  shift
  printf '+ %s\n' "$*" >>"$log"
  "$@" >>"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && [ "${RUN_LOGGED_QUIET:-0}" != 1 ]; then
    printf -- '--- last lines of %s (exit %s) ---\n' "$log" "$rc" >&2
    tail -n 30 "$log" >&2
    printf -- '---\n' >&2
  fi
  return "$rc"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n -E "$@"
  else die "need root to run: $*"
  fi
}

APT_UPDATED=0
apt_update() {
  [ "$APT_UPDATED" -eq 1 ] && return 0
  # A broken third-party source must not stop us; a missing package will fail later, clearly.
  run_logged apt as_root apt-get update || warn "apt-get update reported errors (see $LOG_DIR/apt.log)"
  APT_UPDATED=1
}

apt_install() {
  run_logged apt as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# Print the packages in "$@" that are not installed.
missing_pkgs() {
  local p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || printf '%s\n' "$p"
  done
}

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# The Debian mirror URI that the machine's own bookworm entry uses.
debian_mirror() {
  local codename uri=""
  # shellcheck source=/dev/null
  codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-bookworm}")"
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri="$(awk -v cn="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        u = ""; ok = 0; deb = 0
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", line); split(line, a, /[ \t]+/); u = a[1] }
          if (line ~ /^Types:/)  { if (line ~ /[ \t]deb([ \t]|$)/) deb = 1 }
          if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); n = split(line, s, /[ \t]+/)
                                   for (j = 1; j <= n; j++) if (s[j] == cn) ok = 1 }
        }
        if (ok && deb && u != "") { print u; exit }
      }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri="$(awk -v cn="$codename" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == cn) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# ---- lock: one setup at a time per cache -------------------------------------
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/setup.lock"
  flock 9
fi

# ---- a. apt packages -----------------------------------------------------------
setup_apt() {
  local missing p
  mapfile -t missing < <(missing_pkgs "${APT_PKGS[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_update
    apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
  fi
  for p in "${APT_PKGS[@]}"; do
    local v
    v="$(pkg_version "$p")"
    [ -n "$v" ] || die "package $p is still not installed"
    if [[ " ${missing[*]:-} " == *" $p "* ]]; then say "installed $p $v"; else say "ok $p $v"; fi
  done
  for p in containerd ctr runc iptables-restore ip; do
    command -v "$p" >/dev/null 2>&1 || die "$p not found on PATH after installing ${APT_PKGS[*]}"
  done
  [ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static)"
}

# ---- b. CRIU >= 4 ------------------------------------------------------------------
# criu_good BIN: BIN is CRIU >= 4 and `criu check` says "Looks good".
criu_good() {
  local bin="$1" ver major out
  [ -x "$bin" ] || return 1
  ver="$(criu_version "$bin")"
  major="${ver%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 4 ] || return 1
  out="$("$bin" check 2>&1)" || true
  [[ "$out" == *"Looks good"* ]]
}
criu_version() {
  local out
  out="$("$1" --version 2>/dev/null)" || true
  [[ "$out" =~ Version:\ *([^[:space:]]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
  return 0
}

fetch_criu_tarball() {
  local tarball="$CRIU_CACHE/$CRIU_TARBALL" mirror want
  if sha_ok "$tarball" "$CRIU_SHA256"; then return 0; fi
  rm -f "$tarball"
  mirror="$(debian_mirror)"
  # deb-src only: no trixie binary package can ever be installed from this entry.
  want="# Written by pulumi-containerd-restore scripts/setup.sh.
# trixie SOURCE packages only (deb-src): used to fetch the CRIU $CRIU_VERSION upstream tarball.
# There is no trixie 'deb' entry on purpose: trixie binaries must never be installed here.
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main"
  if [ -r /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    want="$want
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  fi
  if [ "$(cat "$TRIXIE_SRC_LIST" 2>/dev/null || true)" != "$want" ]; then
    printf '%s\n' "$want" | as_root tee "$TRIXIE_SRC_LIST" >/dev/null
    APT_UPDATED=0
  fi
  apt_update
  # `apt-get source -t trixie` is refused when trixie has no binary index
  # ("The value 'trixie' is invalid for APT::Default-Release"), so select the
  # release with criu/trixie. The mirror answers 404 for the .dsc and
  # .debian.tar.xz, so apt exits 100, but the .orig.tar.xz, which is all we
  # need, is downloaded.
  (cd "$CRIU_CACHE" && RUN_LOGGED_QUIET=1 run_logged criu as_root apt-get source --download-only criu/trixie) || true
  if ! sha_ok "$tarball" "$CRIU_SHA256"; then
    # Fallback: the same file straight from the mirror's pool (it stays there
    # while any suite still ships CRIU 4.1.1).
    rm -f "$tarball"
    local url="$mirror/pool/main/c/criu/$CRIU_TARBALL"
    if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
      apt_install curl ca-certificates || true
    fi
    if command -v curl >/dev/null 2>&1; then
      run_logged criu curl -fsSL -o "$tarball.part" "$url" || true
    elif command -v wget >/dev/null 2>&1; then
      run_logged criu wget -q -O "$tarball.part" "$url" || true
    fi
    [ -f "$tarball.part" ] && mv -f "$tarball.part" "$tarball"
  fi
  if ! sha_ok "$tarball" "$CRIU_SHA256"; then
    rm -f "$tarball"
    die "could not get $CRIU_TARBALL with SHA-256 $CRIU_SHA256 (apt-get source criu/trixie and $mirror/pool/main/c/criu/ both failed; see $LOG_DIR/criu.log)"
  fi
}

build_criu() {
  local t0 missing build src
  t0="$(now)"
  mkdir -p "$CRIU_CACHE"
  rm -rf "$CRIU_CACHE"/build.*  # leftovers of a failed build
  # The trixie entry is deb-src only, so these can only come from bookworm;
  # -t bookworm is kept as extra insurance. If a package needs a newer
  # bookworm-updates or -security version, retry without -t.
  mapfile -t missing < <(missing_pkgs "${CRIU_BUILD_DEPS[@]}")
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_update
    apt_install -t bookworm "${missing[@]}" || apt_install "${missing[@]}" ||
      die "could not install CRIU build dependencies: ${missing[*]}"
  fi
  fetch_criu_tarball
  build="$(mktemp -d "$CRIU_CACHE/build.XXXXXX")"
  tar -xJf "$CRIU_CACHE/$CRIU_TARBALL" -C "$build"
  src="$build/criu-$CRIU_VERSION"
  [ -d "$src" ] || die "unexpected layout of $CRIU_TARBALL (no criu-$CRIU_VERSION/)"
  run_logged criu make -C "$src" -j"$(nproc)" criu || die "CRIU $CRIU_VERSION build failed (see $LOG_DIR/criu.log)"
  as_root install -D -m 0755 "$src/criu/criu" "$CRIU_BIN"
  rm -rf "$build"
  if ! criu_good "$CRIU_BIN"; then
    printf -- '--- %s check ---\n' "$CRIU_BIN" >&2
    "$CRIU_BIN" check >&2 || true
    die "CRIU $CRIU_VERSION was built and installed at $CRIU_BIN, but \`criu check\` does not say \"Looks good\""
  fi
  say "installed criu $(criu_version "$CRIU_BIN") $CRIU_BIN (built in $(( $(now) - t0 ))s)"
}

setup_criu() {
  local onpath
  if criu_good "$CRIU_BIN"; then
    say "ok criu $(criu_version "$CRIU_BIN") $CRIU_BIN"
  elif onpath="$(command -v criu 2>/dev/null)" && criu_good "$onpath"; then
    say "ok criu $(criu_version "$onpath") $onpath"
  else
    build_criu
  fi
  # runc finds criu by name: the first one on PATH must be the good one.
  onpath="$(command -v criu)"
  criu_good "$onpath" || die "\`criu\` on PATH is $onpath, not a working CRIU >= 4; put /usr/local/sbin first on PATH"
}

# ---- c. node_modules and Node 24 ---------------------------------------------------
node24_ok() {
  local v
  v="$("$REPO/node_modules/.bin/node" --version 2>/dev/null)" || return 1
  [[ "$v" == v24.* ]]
}

setup_node() {
  local t0
  if ! command -v npm >/dev/null 2>&1; then
    apt_update
    apt_install nodejs npm || die "no npm on PATH and apt-get install nodejs npm failed"
  fi
  if [ ! -d "$REPO/node_modules" ] || [ ! -f "$REPO/node_modules/.package-lock.json" ] ||
     [ "$REPO/package-lock.json" -nt "$REPO/node_modules/.package-lock.json" ]; then
    t0="$(now)"
    (cd "$REPO" && run_logged npm npm ci --no-audit --no-fund) || die "npm ci failed (see $LOG_DIR/npm.log)"
    say "installed node_modules (npm ci, $(( $(now) - t0 ))s)"
  else
    say "ok node_modules"
  fi
  if ! node24_ok; then
    # The `node` package gets its binary from a preinstall script, and newer
    # npm versions may skip install scripts ("npm warn install-scripts").
    # Run it again through npm, or by hand as npm would.
    (cd "$REPO" && run_logged npm npm rebuild node) || true
    if ! node24_ok && [ -f "$REPO/node_modules/node/installArchSpecificPackage.js" ]; then
      (cd "$REPO/node_modules/node" && run_logged npm node installArchSpecificPackage) || true
    fi
    node24_ok || die "node_modules/.bin/node is not Node 24 ($("$REPO/node_modules/.bin/node" --version 2>&1 || true)); see $LOG_DIR/npm.log"
    say "installed node $("$REPO/node_modules/.bin/node" --version) node_modules/.bin/node (ran the node package's install script)"
  else
    say "ok node $("$REPO/node_modules/.bin/node" --version) node_modules/.bin/node"
  fi
}

# ---- d. Pulumi CLI -------------------------------------------------------------------
find_go() {
  if [ -n "${GO:-}" ]; then printf '%s\n' "$GO"
  elif command -v go >/dev/null 2>&1; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then printf '%s\n' /usr/local/go/bin/go
  else return 1
  fi
}

go_build() { # go_build LOGNAME MODDIR OUT PKG
  local log="$1" dir="$2" out="$3" pkg="$4" go
  go="$(find_go)" || { echo "no Go toolchain (looked for \$GO, go on PATH, /usr/local/go/bin/go)" >>"$LOG_DIR/$log.log"; return 1; }
  (cd "$dir" && run_logged "$log" env CGO_ENABLED=0 GOTOOLCHAIN=local "$go" build -trimpath \
    -tags osusergo,grpcnotrace -ldflags "$PULUMI_LDFLAGS" -o "$out" "$pkg")
}

setup_pulumi() {
  local bin="$PULUMI_BIN_DIR/pulumi" t0 v
  mkdir -p "$PULUMI_BIN_DIR"
  if [ "$("$bin" version 2>/dev/null || true)" = "$PULUMI_VERSION" ]; then
    say "ok pulumi $PULUMI_VERSION $bin"
  else
    find_go >/dev/null || die "Go is needed to build the Pulumi CLI: no \$GO, no go on PATH, no /usr/local/go/bin/go"
    say "building pulumi $PULUMI_VERSION with Go (cold: several minutes; log $LOG_DIR/pulumi.log)"
    t0="$(now)"
    rm -f "$bin.tmp"
    go_build pulumi "$REPO/scripts/pulumi-cli" "$bin.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ||
      die "building the Pulumi CLI failed (see $LOG_DIR/pulumi.log)"
    v="$("$bin.tmp" version 2>&1 || true)"
    [ "$v" = "$PULUMI_VERSION" ] || die "the freshly built pulumi says version '$v', not $PULUMI_VERSION"
    mv -f "$bin.tmp" "$bin"
    say "installed pulumi $PULUMI_VERSION $bin (go build, $(( $(now) - t0 ))s)"
  fi

  # The dynamic provider plugin: a small sh script. Copy it, because the
  # provider also runs from directories outside this repo.
  local plug="$REPO/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
  [ -f "$plug" ] || die "$plug missing (is @pulumi/pulumi installed?)"
  if cmp -s "$plug" "$PULUMI_BIN_DIR/pulumi-resource-pulumi-nodejs" && [ -x "$PULUMI_BIN_DIR/pulumi-resource-pulumi-nodejs" ]; then
    say "ok pulumi-resource-pulumi-nodejs"
  else
    install -m 0755 "$plug" "$PULUMI_BIN_DIR/pulumi-resource-pulumi-nodejs.tmp"
    mv -f "$PULUMI_BIN_DIR/pulumi-resource-pulumi-nodejs.tmp" "$PULUMI_BIN_DIR/pulumi-resource-pulumi-nodejs"
    say "installed pulumi-resource-pulumi-nodejs"
  fi

  setup_language_nodejs
}

# pulumi-language-nodejs is optional: only a non-inline `pulumi up` (a
# Pulumi.yaml with runtime nodejs) needs it; Automation API inline programs
# don't. It is untagged, so it can only be reached by the pseudo-version of
# the pkg/v3.274.1 tag commit. A failure here never fails setup.
setup_language_nodejs() {
  local out="$PULUMI_BIN_DIR/pulumi-language-nodejs" stamp="$PULUMI_BIN_DIR/.pulumi-language-nodejs.rev"
  local reason rev
  if [ "${SETUP_SKIP_LANGUAGE_NODEJS:-}" = 1 ]; then
    say "skip pulumi-language-nodejs (SETUP_SKIP_LANGUAGE_NODEJS=1)"; return 0
  fi
  if [ -f "$REPO/scripts/pulumi-language-nodejs/go.mod" ]; then
    rev="repo:$(sha256sum "$REPO/scripts/pulumi-language-nodejs/go.sum" 2>/dev/null | cut -c1-16)"
  else
    rev="${PULUMI_LANGUAGE_NODEJS_VERSION:-}"
    if [ -z "$rev" ] && [ -f "$stamp" ] && [ -x "$out" ]; then rev="$(cat "$stamp")"; fi
    if [ -z "$rev" ]; then
      local go
      go="$(find_go)" || { say "skip pulumi-language-nodejs (no Go)"; return 0; }
      local json
      json="$(cd / && GOTOOLCHAIN=local "$go" mod download -json "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" 2>/dev/null)" || true
      [[ "$json" =~ \"Hash\":\ *\"([0-9a-f]{12,})\" ]] && rev="${BASH_REMATCH[1]}"
      # Prefer the full pseudo-version (v3.0.0-<commit time UTC>-<hash12>): a
      # proxy may serve that while refusing bare commit queries.
      local info="" ts
      if [ -n "$rev" ]; then
        info="$(cd / && GOTOOLCHAIN=local "$go" list -m -json "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" 2>/dev/null)" || true
      fi
      if [ -n "$rev" ] && [[ "$info" =~ \"Time\":\ *\"([^\"]+)\" ]] &&
         ts="$(date -u -d "${BASH_REMATCH[1]}" +%Y%m%d%H%M%S 2>/dev/null)"; then
        rev="v3.0.0-$ts-${rev:0:12}"
      fi
      if [ -z "$rev" ]; then
        say "skip pulumi-language-nodejs (untagged module, and the Go proxy gives no commit for pkg/v3@$PULUMI_VERSION; set PULUMI_LANGUAGE_NODEJS_VERSION=<pseudo-version> to build it)"
        return 0
      fi
    fi
  fi
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$rev" ]; then
    say "ok pulumi-language-nodejs ($rev)"; return 0
  fi
  local t0
  t0="$(now)"
  if reason="$(build_language_nodejs "$rev" 2>&1)"; then
    printf '%s\n' "$rev" >"$stamp"
    say "installed pulumi-language-nodejs ($rev, $(( $(now) - t0 ))s)"
  else
    warn "skip pulumi-language-nodejs: build failed: $(printf '%s' "$reason" | grep -v -e '^---' -e '^+ ' | tail -n 1) (log $LOG_DIR/pulumi-language-nodejs.log)"
  fi
}

build_language_nodejs() ( # a subshell; called from an `if`, where set -e is off, so every step says `|| exit 1`
  local rev="$1" go mod out="$PULUMI_BIN_DIR/pulumi-language-nodejs"
  go="$(find_go)" || exit 1
  if [ -f "$REPO/scripts/pulumi-language-nodejs/go.mod" ]; then
    mod="$REPO/scripts/pulumi-language-nodejs"
  else
    # Throwaway wrapper module in the cache (never in the repo): the CLI's
    # module graph plus the language host at the requested revision.
    mod="$CACHE_ROOT/pulumi-$PULUMI_VERSION/language-nodejs-module"
    rm -rf "$mod" && mkdir -p "$mod" || exit 1
    cp "$REPO/scripts/pulumi-cli/go.mod" "$REPO/scripts/pulumi-cli/go.sum" "$mod/" || exit 1
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$LANGHOST_MOD" >"$mod/tools.go" || exit 1
    (cd "$mod" && run_logged pulumi-language-nodejs env GOTOOLCHAIN=local "$go" get "$LANGHOST_MOD@$rev") || exit 1
    (cd "$mod" && run_logged pulumi-language-nodejs env GOTOOLCHAIN=local "$go" mod tidy) || exit 1
  fi
  rm -f "$out.tmp"
  go_build pulumi-language-nodejs "$mod" "$out.tmp" "$LANGHOST_MOD" || exit 1
  mv -f "$out.tmp" "$out" || exit 1
)

# ---- f. containerd and runc versions (scripts/matrix.sh) ---------------------------
setup_matrix() {
  local cvs=("$SEL_CONTAINERD") rvs=("$SEL_RUNC") v
  if [ "${SETUP_MATRIX:-0}" = 1 ]; then
    cvs+=("${MATRIX_CONTAINERD_VERSIONS[@]}"); rvs+=("${MATRIX_RUNC_VERSIONS[@]}")
  fi
  mapfile -t cvs < <(printf '%s\n' "${cvs[@]}" | awk '!seen[$0]++')
  mapfile -t rvs < <(printf '%s\n' "${rvs[@]}" | awk '!seen[$0]++')
  for v in "${rvs[@]}"; do
    if [ -n "$(bin_dir runc "$v")" ] && [ -n "$(missing_pkgs libseccomp-dev gcc)" ]; then
      apt_update
      apt_install libseccomp-dev gcc || die "apt-get install libseccomp-dev gcc failed (needed to build runc $v)"
      say "installed libseccomp-dev $(pkg_version libseccomp-dev)"
    fi
    build_runc "$v"
  done
  for v in "${cvs[@]}"; do build_containerd "$v"; done
}

# ---- e. env file ---------------------------------------------------------------------
sq() { local s="$1"; printf "'%s'" "${s//\'/\'\\\'\'}"; }

write_env() {
  local tmp="$ENV_FILE.tmp.$$"
  mkdir -p "$(dirname "$ENV_FILE")"
  {
    echo "# Written by scripts/setup.sh; do not edit. Use: . .cache/env.sh"
    echo "_pcr_prepend() { case \":\$PATH:\" in *\":\$1:\"*) ;; *) PATH=\"\$1:\$PATH\" ;; esac; }"
    echo "_pcr_prepend /usr/local/sbin"
    echo "_pcr_prepend $(sq "$REPO/node_modules/.bin")"
    echo "_pcr_prepend $(sq "$PULUMI_BIN_DIR")"
    echo "unset -f _pcr_prepend"
    echo "export PATH"
    echo "export PULUMI_CLI_BIN=$(sq "$PULUMI_BIN_DIR/pulumi")"
    echo "export PULUMI_SKIP_UPDATE_CHECK=true"
    echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
    write_env_matrix
  } >"$tmp"
  if cmp -s "$tmp" "$ENV_FILE"; then rm -f "$tmp"; say "ok .cache/env.sh"
  else mv -f "$tmp" "$ENV_FILE"; say "wrote .cache/env.sh"
  fi
}

# The containerd/runc selection part of the env file: drop any matrix bin dir from
# PATH, then put the selected ones first. Only versions built now can be selected.
write_env_matrix() {
  local d v what
  echo "# containerd / runc: \$CONTAINERD_VERSION and \$RUNC_VERSION (when sourced), else what setup selected."
  echo "export PCR_MATRIX_ROOT=$(sq "$CACHE_ROOT")"
  echo "export PCR_CONTAINERD_VERSION=\"\${CONTAINERD_VERSION:-$SEL_CONTAINERD}\"; PCR_CONTAINERD_VERSION=\"\${PCR_CONTAINERD_VERSION#v}\""
  echo "export PCR_RUNC_VERSION=\"\${RUNC_VERSION:-$SEL_RUNC}\"; PCR_RUNC_VERSION=\"\${PCR_RUNC_VERSION#v}\""
  echo "_pcr_path=''; _pcr_ifs=\"\$IFS\"; IFS=:"
  echo "for _pcr_d in \$PATH; do case \"\$_pcr_d\" in $(sq "$CACHE_ROOT")/containerd-v*/bin|$(sq "$CACHE_ROOT")/runc-v*/bin) ;; *) _pcr_path=\"\${_pcr_path:+\$_pcr_path:}\$_pcr_d\" ;; esac; done"
  echo "IFS=\"\$_pcr_ifs\"; PATH=\"\$_pcr_path\"; unset _pcr_path _pcr_ifs _pcr_d"
  for what in containerd runc; do
    local up; up="$(printf '%s' "$what" | tr a-z A-Z)"
    echo "case \"\$PCR_${up}_VERSION\" in"
    if [ "$what" = containerd ]; then echo "  $DEBIAN_CONTAINERD_VERSION) ;;"; else echo "  $DEBIAN_RUNC_VERSION) ;;"; fi
    for d in "$CACHE_ROOT/$what"-v*/bin; do
      [ -f "$d/.built" ] || continue
      v="${d%/bin}"; v="${v##*/$what-v}"
      echo "  $v) PATH=$(sq "$d"):\"\$PATH\" ;;"
    done
    echo "  *) echo \"env.sh: $what \$PCR_${up}_VERSION is not built; run: ${up}_VERSION=\$PCR_${up}_VERSION bash scripts/setup.sh\" >&2 ;;"
    echo "esac"
  done
  echo "export PATH"
}

T0="$(now)"
setup_apt
setup_matrix
setup_criu
setup_node
setup_pulumi
write_env
say "setup done in $(( $(now) - T0 ))s; now: . .cache/env.sh"
