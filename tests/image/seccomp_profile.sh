#!/usr/bin/env bash
# seccomp_profile.sh — generates deploy/kubernetes/seccomp-goscope.json, goscope's seccomp
# profile, from the container runtimes' default profile (containers-common's
# /usr/share/containers/seccomp.json, podman's and CRI-O's default, the same rules as Docker's
# and containerd's): that profile evaluated for goscope's capabilities on x86-64, flattened into
# the plain OCI form every runtime reads (containerd ignores the Docker-only "includes" and
# "excludes" of Localhost profiles, so they must not be left in), plus bpf() and
# perf_event_open(), which the default allows only with CAP_SYS_ADMIN.
#
#   tests/image/seccomp_profile.sh [DEFAULT_PROFILE] > deploy/kubernetes/seccomp-goscope.json
#
# The manifest test (tests/image/manifest_test.sh) checks that the committed profile is this
# script's output.
set -euo pipefail

src=${1:-/usr/share/containers/seccomp.json}
# The DaemonSet's capabilities (deploy/kubernetes/daemonset.yaml says why each).
caps='["CAP_BPF","CAP_PERFMON","CAP_SYS_PTRACE","CAP_DAC_READ_SEARCH","CAP_SYS_RESOURCE"]'
# goscope is x86-64 only (its BPF side reads Go's amd64 register ABI).
arch=amd64

jq --argjson caps "$caps" --arg arch "$arch" '
	def applies:
		((.includes.caps // []) - $caps | length == 0)
		and ((.excludes.caps // []) | map(select(. as $c | $caps | index($c))) | length == 0)
		and ((.includes.arches // [$arch]) | index($arch))
		and ((.excludes.arches // []) | index($arch) | not);
	{
		defaultAction: .defaultAction,
		defaultErrnoRet: .defaultErrnoRet,
		architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
		syscalls: (
			[.syscalls[] | select(applies)
			 | .names -= ["bpf", "perf_event_open"] | select(.names | length > 0)
			 | {names, action} + (if (.args // []) | length > 0 then {args} else {} end)
			   + (if .errnoRet then {errnoRet} else {} end)]
			+ [{names: ["bpf", "perf_event_open"], action: "SCMP_ACT_ALLOW",
			    comment: "goscope: BPF programs and maps (bpf), CPU sampling and uprobes (perf_event_open); the default profile allows them only with CAP_SYS_ADMIN, which goscope does not have"}]
		)
	}' "$src"
