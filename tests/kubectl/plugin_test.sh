#!/usr/bin/env bash
# plugin_test.sh — `kubectl goscope` (deploy/kubectl-goscope) against a STAND-IN kubectl
# (tests/kubectl/kubectl, first on PATH: no Kubernetes cluster can run on the test machine)
# that answers from fixture pods and agents, records every call, and serves `kubectl
# port-forward` by relaying (tests/go/pfrelay) to a REAL local goscope agent's HTTP API. Checked:
# the calls the plugin makes (the pod's node, the agent on that node, the port-forward to its
# loopback port), the exact request the agent receives, a real profile of a real pod: a Go
# program in a podman container (a real container ID in its cgroup) that the agent knows as pod
# shop/web-1 from the Kubernetes API stand-in (tests/go/kubeapi: no API server can run here
# either), written to the file and opened by --web (a stand-in `go` records the call); the
# agent's real 404 for a container with no Go process and for a pod it does not know, and the
# plugin's errors: no such pod, no agent on the node, a pod not running, a container the pod
# does not have, bad usage; the port-forward ends with the plugin.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$(dirname "$here")")
build=${GOSCOPE_BUILD_DIR:-$repo/build}
goscope=${GOSCOPE_BIN:-$build/goscope}
plugin=$repo/deploy/kubectl-goscope
agent_start_wait_s=20
pod_known_wait_s=30
cleanup_tries=10
fail=0

say() { printf 'plugin_test: %s\n' "$*"; }
bad() { say "FAIL: $*"; fail=1; }
[ -x "$goscope" ] || { say "FAIL: no $goscope (make all)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { say "FAIL: must run as root (the real agent loads BPF)"; exit 1; }

tmp=$(mktemp -d)
agent_pid= kubeapi_pid= ctr=
# The test's verdict is the exit status: the cleanup keeps it. Podman's storage is in $tmp, and
# its overlay mount or conmon can outlive `podman rm` a moment (CI once failed a passing test
# on "rm: cannot remove ...: Directory not empty"): unmounted, then removed, a few tries.
cleanup() {
	local rc=$? try
	[ -z "$agent_pid" ] || { kill -INT "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; }
	[ -z "$kubeapi_pid" ] || { kill "$kubeapi_pid" 2>/dev/null; wait "$kubeapi_pid" 2>/dev/null || true; }
	[ -z "$ctr" ] || podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
	for try in $(seq "$cleanup_tries"); do
		awk -v t="$tmp/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r |
			xargs -r umount -l 2>/dev/null || true
		rm -rf "$tmp" 2>/dev/null && break
		sleep 0.5
	done
	[ ! -e "$tmp" ] || say "warning: $tmp left behind (podman storage still busy)"
	exit "$rc"
}
trap cleanup EXIT

# The stand-in kubectl first on PATH, its state in $KUBECTL_STANDIN.
mkdir -p "$tmp/bin" "$tmp/st"
ln -s "$here/kubectl" "$tmp/bin/kubectl"
ln -s "$plugin" "$tmp/bin/kubectl-goscope"
export PATH=$tmp/bin:$PATH KUBECTL_STANDIN=$tmp/st
"$repo/tests/gobuild.sh" pfrelay 1.27 default >"$tmp/st/relay"
printf 'shop\tweb-1\tnode-a\tRunning\tweb sidecar\n' >>"$tmp/st/pods.tsv"
printf 'shop\tpending-1\tnode-a\tPending\tweb\n' >>"$tmp/st/pods.tsv"
printf 'shop\tother-1\tnode-a\tRunning\tweb\n' >>"$tmp/st/pods.tsv"
printf 'shop\tlonely-1\tnode-b\tRunning\tweb\n' >>"$tmp/st/pods.tsv"
printf 'goscope-agent-x1\tnode-a\tRunning\n' >"$tmp/st/agents.tsv"

# The pod's Go program: a container of its own (podman with runc, cgroupfs and no default
# ulimits on this machine, storage in $tmp; the rootfs is the static program alone).
mkdir -p "$tmp/rootfs" "$tmp/sa"
cp "$("$repo/tests/gobuild.sh" cpuburn 1.27 static)" "$tmp/rootfs/cpuburn"
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$tmp/containers.conf"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$tmp" "$tmp" >"$tmp/storage.conf"
export CONTAINERS_CONF=$tmp/containers.conf CONTAINERS_STORAGE_CONF=$tmp/storage.conf
ctr=$(podman run -d --network none --rootfs "$tmp/rootfs" /cpuburn -duration 300s -goroutines 1) ||
	{ say "FAIL: cannot start the pod's container"; exit 1; }
# The API server stand-in knows it as pod shop/web-1 (containers web and sidecar) on node-a.
cat >"$tmp/pods.json" <<PODS
{"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": [
 {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-web-1", "resourceVersion": "1"},
  "spec": {"nodeName": "node-a", "containers": [{"name": "web"}, {"name": "sidecar"}]},
  "status": {"phase": "Running", "containerStatuses": [{"name": "web",
   "containerID": "containerd://$ctr", "ready": true, "state": {"running": {}}}]}}]}
PODS
echo test-token >"$tmp/sa/token"
mkfifo "$tmp/kubeapi.in"
"$("$repo/tests/gobuild.sh" kubeapi 1.27 default)" -ca-out "$tmp/sa/ca.crt" -token test-token \
	-pods "$tmp/pods.json" <"$tmp/kubeapi.in" >"$tmp/kubeapi.out" 2>&1 &
kubeapi_pid=$!
exec 9>"$tmp/kubeapi.in" # its stdin stays open while the test runs
kport=
for _ in $(seq $((agent_start_wait_s * 10))); do
	kport=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$tmp/kubeapi.out")
	[ -z "$kport" ] || break
	sleep 0.1
done
[ -n "$kport" ] || { cat "$tmp/kubeapi.out"; say "FAIL: the API server stand-in did not start"; exit 1; }

# The real agent, its API on a free loopback port.
"$goscope" agent --data-dir "$tmp/data" --listen 127.0.0.1:0 \
	--kubernetes --k8s-api "https://127.0.0.1:$kport" --k8s-service-account "$tmp/sa" --node node-a >"$tmp/agent.log" 2>&1 &
agent_pid=$!
port=
for _ in $(seq $((agent_start_wait_s * 10))); do
	port=$(sed -n 's/.*API on 127\.0\.0\.1:0 (port \([0-9]*\)).*/\1/p' "$tmp/agent.log" | head -1)
	[ -z "$port" ] || break
	kill -0 "$agent_pid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/agent.log"; say "FAIL: the agent's API did not start"; exit 1; }
echo "127.0.0.1:$port" >"$tmp/st/agent_api"
# Until the agent has labelled the container's process with its pod.
for _ in $(seq $((pod_known_wait_s * 10))); do
	curl -s "http://127.0.0.1:$port/api/processes" | grep -q '"pod":"web-1"' && break
	sleep 0.1
done
curl -s "http://127.0.0.1:$port/api/processes" | grep -q '"pod":"web-1"' ||
	{ tail "$tmp/agent.log"; say "FAIL: the agent never labelled the container with its pod"; exit 1; }
# A stand-in go for --web: records the call instead of serving a web UI.
printf '#!/bin/sh\necho "$*" >>"%s/go.calls"\n' "$tmp" >"$tmp/bin/go"
chmod +x "$tmp/bin/go"

# run NAME WANT_RC WANT_STDERR_SUBSTRING ARGS...: kubectl goscope ARGS (through kubectl's
# plugin lookup would need real kubectl; the plugin is called by its name, as kubectl does).
run() {
	local name=$1 want_rc=$2 want=$3 rc=0
	shift 3
	: >"$tmp/st/calls.log"
	: >"$tmp/st/requests.log"
	(cd "$tmp" && kubectl-goscope "$@") >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" != "$want_rc" ]; then
		bad "$name: exit $rc, want $want_rc: $(cat "$tmp/err")"
	elif ! grep -qF -- "$want" "$tmp/err"; then
		bad "$name: stderr lacks '$want': $(cat "$tmp/err")"
	else
		say "ok: $name: $(tail -1 "$tmp/err")"
	fi
}
called() { grep -qF -- "$1" "$tmp/st/calls.log" || bad "no call '$1' in: $(cat "$tmp/st/calls.log")"; }
not_called() { ! grep -qF -- "$1" "$tmp/st/calls.log" || bad "unexpected call '$1'"; }

# The real profile of the pod's container, opened with --web.
run "profile" 0 "wrote cpu.pb.gz" cpu -n shop web-1 -c web --seconds 2 -o cpu.pb.gz --web
req=$(cat "$tmp/st/requests.log")
[ "$req" = "GET /pprof/cpu?namespace=shop&pod=web-1&container=web&seconds=2 HTTP/1.1" ] ||
	bad "the agent was asked: '$req'"
/usr/lib/go-1.27/bin/go tool pprof -top "$tmp/cpu.pb.gz" 2>/dev/null | grep -q 'main\.hot' ||
	bad "the profile lacks cpuburn's main.hot"
grep -qx "tool pprof -http=: cpu.pb.gz" "$tmp/go.calls" 2>/dev/null || bad "--web did not run go tool pprof -http=: cpu.pb.gz"

# A container of the pod with no Go process: the real agent answers 404.
run "container not running Go" 1 "pod shop/web-1 container sidecar runs no Go process that the agent on node node-a profiles (agent: " \
	cpu -n shop web-1 -c sidecar --seconds 1 -o side.pb.gz
called "get | pod | web-1 | -n | shop"
called "get | pods | -n | goscope | -l | app.kubernetes.io/name=goscope,app.kubernetes.io/component=agent | --field-selector | spec.nodeName=node-a"
called "port-forward | -n | goscope | pod/goscope-agent-x1 | :6061 | --address | 127.0.0.1"
req=$(cat "$tmp/st/requests.log")
[ "$req" = "GET /pprof/cpu?namespace=shop&pod=web-1&container=sidecar&seconds=1 HTTP/1.1" ] ||
	bad "the agent was asked: '$req'"
[ ! -e "$tmp/side.pb.gz" ] || bad "a profile file was written for a 404"
if pgrep -f "pfrelay -to 127.0.0.1:$port" >/dev/null; then
	bad "the port-forward outlived the plugin"
fi

# The namespace of the current context; a pod the agent does not know: 404.
echo shop >"$tmp/st/context_ns"
run "pod unknown to the agent" 1 "pod shop/other-1 runs no Go process" block other-1 --seconds 2
called "config | view | --minify"
req=$(cat "$tmp/st/requests.log")
[ "$req" = "GET /pprof/block?namespace=shop&pod=other-1&seconds=2 HTTP/1.1" ] || bad "the agent was asked: '$req'"
rm -f "$tmp/st/context_ns"

run "no such pod" 1 "no pod shop/nope" cpu -n shop nope
not_called "port-forward"
run "no agent on the node" 1 "no goscope agent on node node-b" cpu -n shop lonely-1
not_called "port-forward"
printf 'goscope-agent-y2\tnode-b\tPending\n' >>"$tmp/st/agents.tsv"
run "agent not running" 1 "the goscope agent on node node-b is not running" cpu -n shop lonely-1
run "pod not running" 1 "pod shop/pending-1 is Pending, not Running" cpu -n shop pending-1
run "no such container" 1 "pod shop/web-1 has no container nope (it has: web sidecar)" cpu -n shop web-1 -c nope
run "unknown kind" 2 "unknown profile kind heap" heap -n shop web-1
run "no pod given" 2 "usage:" cpu -n shop
run "bad seconds" 1 "--seconds wants a whole number" cpu -n shop web-1 --seconds 1.5
run "bad name" 1 "is not a Kubernetes name" cpu -n shop 'web-1&pid=1'

kill -0 "$agent_pid" 2>/dev/null || bad "the agent died: $(tail -3 "$tmp/agent.log")"
[ $fail -eq 0 ] && say "PASS"
exit $fail
