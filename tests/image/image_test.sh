#!/usr/bin/env bash
# image_test.sh — goscope's container image, built and run as the DaemonSet runs it.
#
# No registry is reachable here, so the base image is built locally: debootstrap a minimal
# bookworm (variant minbase; apt sources, dpkg excludes and unsafe-io as in Debian's official
# slim image) and import it as debian:bookworm-slim. Then `make image` (deploy/Dockerfile)
# builds goscope's image on it, and the image runs under podman with exactly the DaemonSet's
# security context (hostPID, capabilities, seccomp profile, no privilege escalation, read-only
# root: the flags come from deploy/kubernetes/ through manifest_check.py podman-flags),
# profiling Go programs of the host:
#   - `goscope cpu` and `goscope block` one-shots; the profiles are decoded with `go tool pprof`
#     and must show the programs' own functions; block's trap cost must be calibrated (the
#     calibration uprobe works in the container) and libbpf must print nothing;
#   - the same image under podman's default seccomp profile: the error names seccomp;
#   - `goscope agent` with the ConfigMap's settings: its store, on the DaemonSet's hostPath,
#     holds the programs' profiles after SIGTERM;
#   - the DaemonSet's exec probes succeed inside the container and /pprof/cpu answers a
#     profile; beside it, an agent that cannot load BPF (podman's default seccomp profile)
#     fails its readiness probe and its /healthz names seccomp.
#
# podman on this machine: runc, cgroupfs and no default ulimits (crun fails on hybrid cgroups,
# and raising RLIMIT_NOFILE/NPROC is not permitted), set by this test's own CONTAINERS_CONF;
# images live in the test's own storage under build/image/ (kept between runs, so a second run
# reuses the base image and every unchanged layer; `make clean` removes it). The debootstrap
# tarball is cached there too and rebuilt after a week.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$(dirname "$here")")
build=${GOSCOPE_BUILD_DIR:-$repo/build}
mkdir -p "$build"
build=$(cd "$build" && pwd -P)
work=$build/image
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=docker.io/library/debian:bookworm-slim
image=localhost/goscope:image-test
base_max_age_days=7
capture_s=3  # each one-shot capture
agent_window=2s
agent_run_s=7 # a few windows
toolchain=1.27
py=/usr/bin/python3 # Debian's, with python3-yaml (deploy/deps.sh)
goscope_default_trap_ns=9000 # DEFAULT_TRAP_COST_NS of agent/capture/block_calibrate.c

t0=$SECONDS
say() { printf 'image_test [%3ds]: %s\n' $((SECONDS - t0)) "$*"; }
die() { say "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (podman with --pid=host, BPF)"
for t in podman runc debootstrap "$py"; do
	command -v "$t" >/dev/null || die "$t not installed (deploy/deps.sh test)"
done

mkdir -p "$work"
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
CONF
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf

pids=()
ctr=
bad_ctr=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -z "$ctr" ] || podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
	[ -z "$bad_ctr" ] || podman rm -f -t 0 "$bad_ctr" >/dev/null 2>&1 || true
	# Layers of earlier builds that no image uses any more (the cache stays).
	podman image prune -f >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The Go programs to profile, built meanwhile (cached under build/gotest/).
"$repo/tests/gobuild.sh" cpuburn "$toolchain" default >"$work/cpuburn.path" 2>"$work/gobuild.err" &
gobuild_cpuburn=$!
"$repo/tests/gobuild.sh" blocker "$toolchain" default >"$work/blocker.path" 2>>"$work/gobuild.err" &
gobuild_blocker=$!

# ---- the base image ----
tarball=$work/bookworm-minbase.tar
if [ -f "$tarball" ] && [ -n "$(find "$tarball" -mtime +$base_max_age_days)" ]; then
	rm -f "$tarball"
	podman rmi -f "$base" >/dev/null 2>&1 || true
fi
if ! podman image exists "$base"; then
	if [ ! -f "$tarball" ]; then
		say "debootstrap --variant=minbase bookworm ($mirror)"
		rootfs=$work/rootfs.tmp
		rm -rf "$rootfs"
		# In two stages, so that dpkg runs the second without an fsync per file (force-unsafe-io,
		# which Debian's official images also set for apt in containers): half the time here.
		{ debootstrap --foreign --variant=minbase bookworm "$rootfs" "$mirror" &&
			echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" &&
			chroot "$rootfs" /debootstrap/debootstrap --second-stage; } >"$work/debootstrap.log" 2>&1 ||
			die "debootstrap failed (see $work/debootstrap.log)"
		# As Debian's slim image: deb822 sources with updates and security, no docs.
		rm -f "$rootfs/etc/apt/sources.list"
		cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<CFG
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
		rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
		tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
		rm -rf "$rootfs"
	fi
	say "import as $base"
	podman import -q "$tarball" "$base" >/dev/null
fi

# ---- goscope's image (every unchanged layer reused) ----
# Both stages at once (--jobs=2: the runtime stage's packages install while goscope builds);
# then the build stage is tagged (all cached) so the prune at exit keeps it and its packages.
say "make image"
make -C "$repo" --no-print-directory image IMAGE="$image" PODMAN_BUILD_FLAGS="--pull=never --jobs=2" \
	>"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; die "make image failed"; }
podman build -q --pull=never --target build -t "$image-build" -f "$repo/deploy/Dockerfile" "$repo" \
	>"$work/build-stage.log" 2>&1 || { tail -30 "$work/build-stage.log"; die "the build stage failed"; }
say "image built: $(podman image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"

# ---- Go programs on the host ----
wait $gobuild_cpuburn && wait $gobuild_blocker || { cat "$work/gobuild.err"; die "building the Go programs failed"; }
cpuburn=$(cat "$work/cpuburn.path") blocker=$(cat "$work/blocker.path")
gotool=/usr/lib/go-$toolchain/bin/go
"$cpuburn" -duration 120s -goroutines 1 >"$work/cpuburn.out" 2>&1 &
pids+=($!)
cpid=$!
"$blocker" -duration 120s >"$work/blocker.out" 2>&1 &
pids+=($!)
bpid=$!

# ---- the DaemonSet's security context ----
mapfile -t sec < <("$py" "$here/manifest_check.py" podman-flags "$repo/deploy/kubernetes")
[ ${#sec[@]} -gt 0 ] || die "no podman flags from the DaemonSet"
say "security context: ${sec[*]}"
out=$work/out
rm -rf "$out" && mkdir -p "$out"
store=(-v "$out:/var/lib/goscope")

# pprof_top FILE: `go tool pprof -top` of a profile.
pprof_top() { "$gotool" tool pprof -top -nodecount=200 "$1" 2>/dev/null; }

# ---- goscope cpu ----
podman run --rm "${sec[@]}" "${store[@]}" "$image" cpu --pid "$cpid" --duration "${capture_s}s" \
	-o /var/lib/goscope/cpu.pb.gz 2>"$work/cpu.err" || { cat "$work/cpu.err"; die "goscope cpu failed in the image"; }
grep -q libbpf "$work/cpu.err" && { cat "$work/cpu.err"; die "libbpf printed (goscope cpu)"; }
top=$(pprof_top "$out/cpu.pb.gz") || die "go tool pprof cannot read cpu.pb.gz"
# cpuburn's work: 6 units in main.hot, 3 in main.warm, 1 in main.cold per round.
# cum% of a function in $top (its column 5; the function is column 6).
cum() { awk -v f="$1" '$6 == f { sub(/%/, "", $5); print $5 + 0; found = 1 } END { if (!found) print 0 }' <<<"$top"; }
hot=$(cum main.hot) warm=$(cum main.warm) cold=$(cum main.cold)
say "cpu: main.hot ${hot}%, main.warm ${warm}%, main.cold ${cold}% (cumulative)"
awk -v h="$hot" -v w="$warm" -v c="$cold" 'BEGIN { exit !(h > w && w > c && c > 0 && h >= 40) }' ||
	{ echo "$top" | head -20; die "cpu profile does not show cpuburn's 6:3:1 work"; }

# ---- goscope block (calibration in the container; libbpf quiet) ----
podman run --rm "${sec[@]}" "${store[@]}" "$image" block --pid "$bpid" --duration "${capture_s}s" \
	-o /var/lib/goscope/block.pb.gz 2>"$work/block.err" || { cat "$work/block.err"; die "goscope block failed in the image"; }
grep -q libbpf "$work/block.err" && { cat "$work/block.err"; die "libbpf printed (goscope block)"; }
trap_ns=$(sed -n 's/.*cost per probe hit: trap \([0-9]*\) ns.*/\1/p' "$work/block.err")
[ -n "$trap_ns" ] || { cat "$work/block.err"; die "no block summary"; }
[ "$trap_ns" != "$goscope_default_trap_ns" ] || die "block's trap cost is the uncalibrated default"
top=$(pprof_top "$out/block.pb.gz") || die "go tool pprof cannot read block.pb.gz"
kinds=$(grep -o 'main\.block[A-Za-z]*' <<<"$top" | sort -u | tr '\n' ' ')
say "block: trap ${trap_ns} ns (calibrated), functions: $kinds"
[ "$(wc -w <<<"$kinds")" -ge 3 ] || { echo "$top" | head -20; die "block profile lacks blocker's functions"; }
"$gotool" tool pprof -raw "$out/block.pb.gz" 2>/dev/null | grep -q 'wait_reason' ||
	die "block profile has no wait_reason labels"

# ---- under podman's default seccomp profile: the cause is named ----
nosec=()
for f in "${sec[@]}"; do [[ $f == --security-opt=seccomp=* ]] || nosec+=("$f"); done
if podman run --rm "${nosec[@]}" "$image" cpu --pid "$cpid" --duration 1s -o /dev/null 2>"$work/seccomp.err"; then
	die "goscope cpu worked under the default seccomp profile (bpf() should be refused)"
fi
grep -q 'refused by this process.s seccomp filter' "$work/seccomp.err" || { cat "$work/seccomp.err"; die "the error does not name seccomp"; }
grep -q 'rejected by the kernel' "$work/seccomp.err" && die "the error still blames the kernel"
say "default seccomp profile: $(cut -c1-100 "$work/seccomp.err")..."

# ---- the init container installing the seccomp profile (its command, its security context) ----
mkdir -p "$out/host-seccomp" "$out/profile"
cp "$repo/deploy/kubernetes/seccomp-goscope.json" "$out/profile/"
mapfile -d '' -t init < <("$py" "$here/manifest_check.py" init-command "$repo/deploy/kubernetes")
podman run --rm --cap-drop=ALL --security-opt=no-new-privileges --read-only --read-only-tmpfs=false \
	-v "$out/profile:/profile:ro" -v "$out/host-seccomp:/host-seccomp" --entrypoint "${init[0]}" \
	"$image" "${init[@]:1}" || die "the init container's command fails"
cmp -s "$out/host-seccomp/seccomp-goscope.json" "$repo/deploy/kubernetes/seccomp-goscope.json" ||
	die "the init container did not install the seccomp profile"
[ -z "$(find "$out/host-seccomp" -name '.*')" ] || die "the init container left a temporary file"
say "init container: installs the seccomp profile"

# ---- the agent, configured by the ConfigMap ----
mapfile -t envs < <("$py" "$here/manifest_check.py" env "$repo/deploy/kubernetes")
envflags=()
for e in "${envs[@]}"; do envflags+=(-e "$e"); done
ctr=$(podman run -d "${sec[@]}" "${store[@]}" "${envflags[@]}" -e NODE_NAME=image-test \
	-e GOSCOPE_WINDOW=$agent_window "$image" agent)
# Beside it, an agent that cannot load BPF (podman's default seccomp profile).
mkdir -p "$out/unhealthy"
bad_ctr=$(podman run -d "${nosec[@]}" "${envflags[@]}" -v "$out/unhealthy:/var/lib/goscope" "$image" agent)
sleep "$agent_run_s"
for kind in liveness readiness; do
	mapfile -d '' -t probe < <("$py" "$here/manifest_check.py" probe "$repo/deploy/kubernetes" $kind)
	podman exec "$ctr" "${probe[@]}" || die "the DaemonSet's $kind probe fails in the container"
done
netns=$(podman inspect -f '{{.State.Pid}}' "$ctr")
nsenter -t "$netns" -n curl -sf -o "$out/api-cpu.pb.gz" \
	"http://127.0.0.1:6061/pprof/cpu?pid=$cpid&seconds=2" || die "GET /pprof/cpu failed"
pprof_top "$out/api-cpu.pb.gz" | grep -q 'main\.hot' || die "the API's CPU profile lacks main.hot"
# An agent that cannot load BPF (podman's default seccomp profile) keeps serving: its
# readiness probe must fail, and /healthz must say why.
mapfile -d '' -t probe < <("$py" "$here/manifest_check.py" probe "$repo/deploy/kubernetes" readiness)
if podman exec "$bad_ctr" "${probe[@]}"; then
	die "the readiness probe passes on an agent without BPF"
fi
health=$(nsenter -t "$(podman inspect -f '{{.State.Pid}}' "$bad_ctr")" -n curl -s http://127.0.0.1:6061/healthz || true)
podman rm -f -t 0 "$bad_ctr" >/dev/null
bad_ctr=
grep -q seccomp <<<"$health" || die "/healthz of an agent without BPF does not name seccomp: $health"
say "agent without BPF: readiness fails, /healthz: $(cut -c1-80 <<<"$health")..."
say "agent API: probes pass, /pprof/cpu answers cpuburn's profile"
podman stop -t 10 "$ctr" >/dev/null
rc=$(podman inspect -f '{{.State.ExitCode}}' "$ctr")
podman logs "$ctr" >"$work/agent.log" 2>&1 || true
podman rm "$ctr" >/dev/null
ctr=
[ "$rc" = 0 ] || { tail "$work/agent.log"; die "the agent exited $rc on SIGTERM"; }
podman run --rm "${sec[@]}" "${store[@]}" "$image" export --data-dir /var/lib/goscope \
	--service cpuburn --type cpu --from -10m -o /var/lib/goscope/agent-cpu.pb.gz >/dev/null 2>&1 ||
	{ tail "$work/agent.log"; die "no cpuburn profiles in the agent's store"; }
"$gotool" tool pprof -raw "$out/agent-cpu.pb.gz" 2>/dev/null | grep -q 'node:\[image-test\]\|node.*image-test' ||
	die "the agent's profiles lack node=NODE_NAME"
pprof_top "$out/agent-cpu.pb.gz" | grep -q 'main\.hot' || die "the agent's cpuburn profile lacks main.hot"
say "agent: stored cpuburn's profiles (node=image-test), stopped cleanly"
say "PASS"
