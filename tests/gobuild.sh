#!/usr/bin/env bash
# Build a Go test program from tests/go/PROGRAM with a given toolchain and build mode.
#
#   tests/gobuild.sh PROGRAM TOOLCHAIN MODE   -> prints absolute path of the executable
#   tests/gobuild.sh --list-toolchains        -> 1.19 ... 1.27, one per line
#   tests/gobuild.sh --list-modes             -> build modes, one per line
#
# Exit codes: 0 ok, 1 build failed, 2 usage error, 77 toolchain not installed.
# Output is cached under $GOSCOPE_BUILD_DIR/gotest/PROGRAM/HASH-goTOOLCHAIN-MODE/PROGRAM
# (GOSCOPE_BUILD_DIR defaults to <repo>/build).
set -euo pipefail

TOOLCHAINS=(1.19 1.21 1.22 1.23 1.24 1.26 1.27)
MODES=(default stripped pie static cgo stripped-pie cgo-stripped)

usage() {
	echo "usage: $0 PROGRAM TOOLCHAIN MODE | --list-toolchains | --list-modes" >&2
	exit 2
}

case "${1:-}" in
--list-toolchains) printf '%s\n' "${TOOLCHAINS[@]}"; exit 0 ;;
--list-modes) printf '%s\n' "${MODES[@]}"; exit 0 ;;
-h|--help) usage ;;
esac
[ $# -eq 3 ] || usage

program=$1 toolchain=$2 mode=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$here")
srcdir=$here/go/$program

case "$program" in
''|*/*|.*) echo "gobuild: bad program name '$program'" >&2; exit 2 ;;
esac
if [ ! -f "$srcdir/go.mod" ]; then
	echo "gobuild: unknown program '$program' (no $srcdir/go.mod)" >&2
	exit 2
fi
case "$toolchain" in
1.[0-9]|1.[0-9][0-9]) ;;
*) echo "gobuild: bad toolchain '$toolchain' (expected e.g. 1.19)" >&2; exit 2 ;;
esac

# cgo: "" = toolchain default (plain go build), 0 = CGO_ENABLED=0, 1 = CGO_ENABLED=1
cgo=
flags=()
case "$mode" in
default) ;;
stripped) flags=(-ldflags=-s\ -w) ;;
pie) flags=(-buildmode=pie) ;;
stripped-pie) flags=(-buildmode=pie -ldflags=-s\ -w) ;;
static) cgo=0 ;;
cgo) cgo=1; flags=(-tags=goscope_cgo -ldflags=-linkmode=external) ;;
cgo-stripped) cgo=1; flags=(-tags=goscope_cgo "-ldflags=-linkmode=external -s -w") ;;
*) echo "gobuild: unknown mode '$mode'" >&2; exit 2 ;;
esac

gobin=/usr/lib/go-$toolchain/bin/go
if [ ! -x "$gobin" ]; then
	echo "skipped: go$toolchain not installed" >&2
	exit 77
fi

builddir=${GOSCOPE_BUILD_DIR:-$repo/build}
mkdir -p "$builddir"
builddir=$(cd "$builddir" && pwd -P)

# Hash: sorted file names + contents of the program directory, plus mode flags.
hash=$(
	cd "$srcdir"
	{
		find . -type f ! -name '*~' -print | LC_ALL=C sort | while IFS= read -r f; do
			printf 'file %s\n' "$f"
			sha256sum <"$f"
		done
		printf 'mode %s cgoenv=%s flags' "$mode" "${cgo:-default}"
		printf ' [%s]' "${flags[@]}"
		printf '\n'
	} | sha256sum | cut -c1-16
)

outdir=$builddir/gotest/$program/$hash-go$toolchain-$mode
out=$outdir/$program
if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$outdir"
tmp=$outdir/.$program.tmp.$$
trap 'rm -f "$tmp"' EXIT

export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOPROXY=off GO111MODULE=on
export GOCACHE=$builddir/gocache GOPATH=$builddir/gopath GOENV=off
if [ -n "$cgo" ]; then
	export CGO_ENABLED=$cgo
else
	unset CGO_ENABLED
fi
unset GOROOT GOOS GOARCH GOARM GOAMD64 GOEXPERIMENT GOWORK 2>/dev/null || true
export GOWORK=off

if ! (cd "$srcdir" && "$gobin" build "${flags[@]}" -o "$tmp" .) >&2; then
	echo "gobuild: go$toolchain build of $program ($mode) failed" >&2
	exit 1
fi
mv -f "$tmp" "$out"
trap - EXIT
echo "$out"
