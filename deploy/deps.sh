#!/usr/bin/env bash
# deps.sh — the one list of Debian packages goscope needs, and their installer.
#
#   deploy/deps.sh runtime   packages the goscope binary needs at run time (container image)
#   deploy/deps.sh build     runtime + compilers, headers, bpftool
#   deploy/deps.sh test      build + Criterion, test tools and every Go toolchain for test programs
#   deploy/deps.sh list SET  print the package names of SET, one per line
#
# Idempotent: when everything is installed it runs no apt command and returns at once.
set -euo pipefail

RUNTIME_PKGS=(libbpf1 libelf1 zlib1g libsqlite3-0 libcjson1 libmicrohttpd12 libcurl4)
BUILD_PKGS=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
            linux-libc-dev libsqlite3-dev libcjson-dev libmicrohttpd-dev libcurl4-openssl-dev)
# python3-yaml: Debian's /usr/bin/python3 with YAML, for the manifest test; jq: the seccomp profile.
TEST_PKGS=(libcriterion-dev libclang-rt-14-dev binutils procps iproute2 util-linux sqlite3
           panicparse curl openssl prometheus yamllint podman runc debootstrap
           python3-yaml jq)
# Go toolchains used to build the test programs (Debian's golang-1.NN-go, see debian-go.sh).
GO_VERSIONS=(1.19 1.21 1.22 1.23 1.24 1.26 1.27)

here=$(cd "$(dirname "$0")" && pwd)
set_name=${1:-test}

pkgs_of() {
	case "$1" in
	runtime) printf '%s\n' "${RUNTIME_PKGS[@]}" ;;
	build) pkgs_of runtime; printf '%s\n' "${BUILD_PKGS[@]}" ;;
	test) pkgs_of build; printf '%s\n' "${TEST_PKGS[@]}" ;;
	*) echo "deps.sh: unknown set '$1' (runtime, build, test)" >&2; return 2 ;;
	esac
}

if [ "$set_name" = list ]; then
	pkgs_of "${2:-test}"
	exit 0
fi

mapfile -t wanted < <(pkgs_of "$set_name")
missing=()
for p in "${wanted[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages (run as root to install): ${missing[*]}" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$set_name" = test ]; then
	need_go=()
	for v in "${GO_VERSIONS[@]}"; do
		[ -x "/usr/lib/go-$v/bin/go" ] || need_go+=("$v")
	done
	if [ ${#need_go[@]} -gt 0 ]; then
		bash "$here/debian-go.sh" "${need_go[@]}"
	fi
	# pprof-format, the independent pprof decoder of tests/tools (lock file committed). node
	# and npm are preinstalled; Debian's nodejs/npm would conflict with that build.
	tools="$here/../tests/tools"
	if [ ! -d "$tools/node_modules/pprof-format" ]; then
		if command -v npm >/dev/null 2>&1; then
			(cd "$tools" && npm ci --silent --no-audit --no-fund)
		else
			echo "deps.sh: npm not found: the pprof-format checks will be skipped" >&2
		fi
	fi
fi
