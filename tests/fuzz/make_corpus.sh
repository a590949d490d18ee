#!/usr/bin/env bash
# Regenerates the fuzz seed corpus in tests/fuzz/corpus/ (run once by hand; the output is
# committed). Crafted inputs come from make_corpus.c; the rest are slices of the installed Go
# 1.19 and 1.27 tool binaries and, when small enough, a stripped Go 1.27 hello-world.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
out=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out"
${CC:-cc} -std=gnu11 -O1 -D_GNU_SOURCE -I"$repo" -I"$repo/include" -o "$tmp/make_corpus" \
	"$here/make_corpus.c"
"$tmp/make_corpus" "$out"

for v in 19 27; do
	vet=/usr/lib/go-1.$v/pkg/tool/linux_amd64/vet
	[ -r "$vet" ] || { echo "skipping go1.$v: $vet missing" >&2; continue; }
	head -c 4096 "$vet" >"$out/go1$v-vet-head-4k.elf"
	objcopy -O binary --only-section=.gopclntab "$vet" "$tmp/pclntab"
	head -c 65536 "$tmp/pclntab" >"$out/go1$v-vet-gopclntab-64k.bin"
done

# A stripped, static hello-world; the fmt-based one is ~1.5 MB, println keeps it smaller.
go=/usr/lib/go-1.27/bin/go
if [ -x "$go" ]; then
	mkdir -p "$tmp/hello"
	printf 'package main\n\nfunc main() { println("hello, world") }\n' >"$tmp/hello/main.go"
	printf 'module example.com/hello\n\ngo 1.27\n' >"$tmp/hello/go.mod"
	(cd "$tmp/hello" && GOCACHE=$tmp/gocache GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 \
		"$go" build -trimpath -ldflags='-s -w' -o hello .)
	size=$(stat -c %s "$tmp/hello/hello")
	if [ "$size" -lt $((1300 * 1024)) ]; then
		cp "$tmp/hello/hello" "$out/go127-hello-stripped.elf"
	else
		echo "hello-world is $size bytes, not included" >&2
	fi
fi
du -sh "$out"
