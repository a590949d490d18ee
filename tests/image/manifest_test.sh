#!/usr/bin/env bash
# manifest_test.sh — goscope's Kubernetes manifests (deploy/kubernetes/): yamllint clean, every
# security property of the DaemonSet holds (tests/image/manifest_check.py), the seccomp profile
# is what tests/image/seccomp_profile.sh generates, and each property really is checked: a
# copy of the manifests with one property broken at a time (privileged added, a capability
# added, ...) must fail the check. No Kubernetes can run here; the image test runs the image
# under podman with the same security context.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(dirname "$(dirname "$here")")
manifests=$repo/deploy/kubernetes
# Debian's python3 with python3-yaml (deploy/deps.sh), never another python3 on PATH.
py=/usr/bin/python3
check=$here/manifest_check.py
fail=0

say() { printf 'manifest_test: %s\n' "$*"; }
bad() { say "FAIL: $*"; fail=1; }

yamllint -s -c "$repo/.yamllint" "$manifests" "$repo/.yamllint" || bad "yamllint"
"$py" "$check" check "$manifests" || bad "the manifests as committed"

if [ -r /usr/share/containers/seccomp.json ]; then
	diff <("$here/seccomp_profile.sh") "$manifests/seccomp-goscope.json" >/dev/null ||
		bad "deploy/kubernetes/seccomp-goscope.json is not tests/image/seccomp_profile.sh's output"
else
	bad "no /usr/share/containers/seccomp.json (golang-github-containers-common, with podman)"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# mutate NAME FILE PERL-EXPR: the check must fail on a copy with FILE edited by PERL-EXPR (and
# the edit must change something, else the mutation itself is broken).
mutate() {
	local name=$1 file=$2 expr=$3
	rm -rf "$tmp/m" && cp -r "$manifests" "$tmp/m"
	perl -0pi -e "$expr" "$tmp/m/$file"
	if cmp -s "$manifests/$file" "$tmp/m/$file"; then
		bad "mutation '$name' changed nothing"
	elif "$py" "$check" check "$tmp/m" 2>"$tmp/err"; then
		bad "mutation '$name' passed the check"
	else
		say "ok: '$name' refused: $(head -1 "$tmp/err")"
	fi
}

ds=daemonset.yaml
mutate "privileged: true" $ds 's/(\n(\s+)allowPrivilegeEscalation: false\n(?!.*allowPrivilegeEscalation))/$1$2privileged: true\n/s'
mutate "privileged: false" $ds 's/(\n(\s+)allowPrivilegeEscalation: false\n(?!.*allowPrivilegeEscalation))/$1$2privileged: false\n/s'
mutate "add SYS_ADMIN" $ds 's/(\n(\s+)- BPF  #)/\n$2- SYS_ADMIN  # everything$1/'
mutate "capability without a comment" $ds 's/- SYS_RESOURCE  #[^\n]*/- SYS_RESOURCE/'
mutate "no drop ALL" $ds 's/drop: \[ALL\]\n(\s+)add:/drop: []\n$1add:/'
mutate "allowPrivilegeEscalation" $ds 's/(.*)allowPrivilegeEscalation: false/$1allowPrivilegeEscalation: true/s'
mutate "readOnlyRootFilesystem" $ds 's/(.*)readOnlyRootFilesystem: true/$1readOnlyRootFilesystem: false/s'
mutate "init container writable root" $ds 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/'
mutate "seccomp Unconfined" $ds 's/type: Localhost/type: Unconfined/'
mutate "no hostPID" $ds 's/hostPID: true/hostPID: false/'
mutate "hostNetwork" $ds 's/(\n(\s+)hostPID: true)/$1\n$2hostNetwork: true/'
mutate "store not on the host" $ds 's/path: \/var\/lib\/goscope\n/path: \/tmp\/goscope\n/'
mutate "NODE_NAME not from the downward API" $ds 's/fieldPath: spec.nodeName/fieldPath: metadata.name/'
mutate "probes not on /healthz" $ds 's/printf \x27GET \/healthz/printf \x27GET \/metrics/'
mutate "no resource limits" $ds 's/\n\s+limits:\n\s+cpu: 500m\n\s+memory: 256Mi//'
mutate "memory request below the measured RSS" $ds 's/memory: 64Mi/memory: 16Mi/'
mutate "tolerations of one taint only" $ds 's/- operator: Exists/- operator: Exists\n          key: dedicated/'
mutate "no seccomp install" $ds 's/\/host-seccomp\/seccomp-goscope.json/\/host-seccomp\/other.json/'
mutate "ClusterRole reads secrets" clusterrole.yaml 's/resources: \["pods"\]/resources: ["pods", "secrets"]/'
mutate "ClusterRole lists nodes" clusterrole.yaml 's/verbs: \["get"\]/verbs: ["get", "list"]/'
mutate "API off loopback" configmap.yaml 's/GOSCOPE_LISTEN: 127.0.0.1:6061/GOSCOPE_LISTEN: 0.0.0.0:6061/'
mutate "profile refuses bpf" seccomp-goscope.json 's/"names": \[\s*"bpf",/"names": [/'
mutate "profile allows by default" seccomp-goscope.json 's/"defaultAction": "SCMP_ACT_ERRNO"/"defaultAction": "SCMP_ACT_ALLOW"/'
mutate "kustomization misses the Secret" kustomization.yaml 's/\n\s+- secret-push.yaml//'

[ $fail -eq 0 ] && say "PASS"
exit $fail
