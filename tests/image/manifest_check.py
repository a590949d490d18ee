#!/usr/bin/python3
"""manifest_check.py — reads goscope's Kubernetes manifests (deploy/kubernetes/) and either
checks every security property the DaemonSet promises, or derives from them what the image
test runs under podman, so the test uses exactly the DaemonSet's security context.

Run with Debian's /usr/bin/python3 and python3-yaml (deploy/deps.sh installs it), never with
another python3 on PATH.

  manifest_check.py check DIR          exit 0, or 1 listing every violated property
  manifest_check.py podman-flags DIR   podman run flags of the agent container, one per line
  manifest_check.py probe DIR KIND     KIND (liveness|readiness) probe's exec command, NUL-separated
  manifest_check.py env DIR            the ConfigMap's agent settings, KEY=VALUE per line
  manifest_check.py init-command DIR   the seccomp-installing init container's command, NUL-separated
"""
import json
import os
import re
import sys

import yaml

EXPECTED_RESOURCES = [
    "namespace.yaml", "serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml",
    "configmap.yaml", "secret-push.yaml", "daemonset.yaml",
]
# What goscope needs, each said why in daemonset.yaml; anything else is a failure.
ALLOWED_CAPS = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_RESOURCE"}
# The syscalls the seccomp profile must allow (the runtimes' default refuses them).
NEEDED_SYSCALLS = {"bpf", "perf_event_open"}
AGENT_LABELS = {"app.kubernetes.io/name": "goscope", "app.kubernetes.io/component": "agent"}
STORE = "/var/lib/goscope"
HEALTH_PORT = "6061"
# tests/bench/agent_overhead.sh: the agent's RSS max with 50 processes.
MEASURED_RSS_MIB = 27.3
KUBELET_SECCOMP_ROOT = "/var/lib/kubelet/seccomp"


def load_all(d):
    with open(os.path.join(d, "kustomization.yaml")) as f:
        kust = yaml.safe_load(f)
    docs = {}
    for name in kust.get("resources", []):
        with open(os.path.join(d, name)) as f:
            docs[name] = [x for x in yaml.safe_load_all(f) if x is not None]
    return kust, docs


def one(docs, kind):
    found = [x for ds in docs.values() for x in ds if x.get("kind") == kind]
    return found[0] if len(found) == 1 else None


def mem_mib(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi)?", str(q))
    if not m:
        return None
    return float(m.group(1)) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, None: 1 / (1 << 20)}[m.group(2)]


def cpu_milli(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m)?", str(q))
    if not m:
        return None
    return float(m.group(1)) * (1 if m.group(2) else 1000)


def has_key(obj, key):
    """Whether key appears anywhere in obj (privileged must not, at any depth)."""
    if isinstance(obj, dict):
        return key in obj or any(has_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(has_key(v, key) for v in obj)
    return False


def agent_container(ds):
    for c in ds["spec"]["template"]["spec"].get("containers", []):
        if c.get("name") == "agent":
            return c
    return None


def check(d):
    bad = []
    kust, docs = load_all(d)
    if kust.get("resources") != EXPECTED_RESOURCES:
        bad.append("kustomization resources are %s, not %s" % (kust.get("resources"), EXPECTED_RESOURCES))
    if kust.get("namespace") != "goscope":
        bad.append("kustomization namespace is not goscope")
    ns = one(docs, "Namespace")
    if not ns or ns["metadata"]["name"] != "goscope":
        bad.append("no Namespace goscope")
    sa = one(docs, "ServiceAccount")
    if not sa:
        bad.append("no ServiceAccount")
    role = one(docs, "ClusterRole")
    want_rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                  {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    if not role or role.get("rules") != want_rules:
        bad.append("ClusterRole rules are not exactly pods get/list/watch and nodes get: %s"
                   % (role or {}).get("rules"))
    rb = one(docs, "ClusterRoleBinding")
    if not rb or not sa or not role or rb["roleRef"].get("name") != role["metadata"]["name"] \
            or rb.get("subjects") != [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                       "namespace": "goscope"}]:
        bad.append("ClusterRoleBinding does not bind the ClusterRole to the ServiceAccount alone")
    cm = one(docs, "ConfigMap")
    if not cm or not any(k.startswith("GOSCOPE_") for k in cm.get("data", {})):
        bad.append("no ConfigMap of agent flags (GOSCOPE_*)")
    elif cm["data"].get("GOSCOPE_LISTEN") != "127.0.0.1:" + HEALTH_PORT:
        bad.append("the API does not listen on the pod's loopback port " + HEALTH_PORT)
    if not one(docs, "Secret"):
        bad.append("no example Secret of push credentials")
    ds = one(docs, "DaemonSet")
    if not ds:
        return bad + ["no DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    if has_key(ds, "privileged"):
        bad.append("privileged appears in the DaemonSet")
    if pod.get("hostPID") is not True:
        bad.append("hostPID is not true")
    for k in ("hostNetwork", "hostIPC"):
        if pod.get(k):
            bad.append(k + " is set")
    if sa and pod.get("serviceAccountName") != sa["metadata"]["name"]:
        bad.append("the pod does not run as the ServiceAccount")
    labels = ds["spec"]["template"]["metadata"].get("labels", {})
    if any(labels.get(k) != v for k, v in AGENT_LABELS.items()):
        bad.append("pod labels %s lack %s (kubectl goscope selects by them)" % (labels, AGENT_LABELS))
    if not any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t
               for t in pod.get("tolerations", [])):
        bad.append("no toleration of every taint (operator: Exists)")
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    for c in containers:
        sc = c.get("securityContext", {})
        name = c.get("name")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append("%s: allowPrivilegeEscalation is not false" % name)
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append("%s: readOnlyRootFilesystem is not true" % name)
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            bad.append("%s: capabilities do not drop ALL" % name)
        sp = sc.get("seccompProfile", pod.get("securityContext", {}).get("seccompProfile"))
        if not sp or sp.get("type") not in ("RuntimeDefault", "Localhost"):
            bad.append("%s: no seccomp profile (RuntimeDefault or Localhost)" % name)
        if c is not agent_container(ds) and sc.get("capabilities", {}).get("add"):
            bad.append("%s: adds capabilities" % name)
    agent = agent_container(ds)
    if not agent:
        return bad + ["no container named agent"]
    sc = agent.get("securityContext", {})
    caps = sc.get("capabilities", {}).get("add", [])
    extra = set(caps) - ALLOWED_CAPS
    if extra:
        bad.append("agent adds capabilities goscope does not need: %s" % sorted(extra))
    with open(os.path.join(d, "daemonset.yaml")) as f:
        text = f.read().splitlines()
    for cap in caps:
        pat = re.compile(r"^\s*-\s*%s\s*#\s*\S" % re.escape(cap))
        if not any(pat.match(line) for line in text):
            bad.append("capability %s has no comment saying why" % cap)
    sp = sc.get("seccompProfile", {})
    bad += check_seccomp(d, pod, sp)
    env = {e["name"]: e for e in agent.get("env", [])}
    if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
        bad.append("NODE_NAME does not come from the downward API (spec.nodeName)")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    store = [m for m in agent.get("volumeMounts", []) if m.get("mountPath") == STORE]
    if not store or vols.get(store[0]["name"], {}).get("hostPath", {}).get("path") != STORE:
        bad.append("the store %s is not a hostPath" % STORE)
    for kind in ("livenessProbe", "readinessProbe"):
        cmd = " ".join(agent.get(kind, {}).get("exec", {}).get("command", []))
        if "/healthz" not in cmd or "127.0.0.1/" + HEALTH_PORT not in cmd:
            bad.append("%s does not ask /healthz on 127.0.0.1:%s" % (kind, HEALTH_PORT))
    res = agent.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    for k, conv in (("cpu", cpu_milli), ("memory", mem_mib)):
        r, l = conv(req.get(k, "")), conv(lim.get(k, ""))
        if r is None or l is None:
            bad.append("no %s request and limit" % k)
        elif r > l:
            bad.append("%s request above its limit" % k)
    if (mem_mib(req.get("memory", "")) or 0) < MEASURED_RSS_MIB:
        bad.append("memory request below the measured RSS (%.1f MiB)" % MEASURED_RSS_MIB)
    return bad


def check_seccomp(d, pod, sp):
    """The agent's profile: Localhost, installed by an init container from the generated
    configMap, allowing bpf and perf_event_open and refusing what is not listed."""
    bad = []
    if sp.get("type") != "Localhost":
        return ["agent's seccomp profile is %s, not Localhost" % sp.get("type")]
    local = sp.get("localhostProfile", "")
    path = os.path.join(KUBELET_SECCOMP_ROOT, local)
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    installed = False
    for c in pod.get("initContainers", []):
        for m in c.get("volumeMounts", []):
            hp = vols.get(m["name"], {}).get("hostPath", {}).get("path")
            if hp and path.startswith(hp + "/"):
                target = m["mountPath"] + path[len(hp):]
                installed = installed or target in " ".join(c.get("command", []) + c.get("args", []))
    if not installed:
        bad.append("no init container installs %s" % path)
    with open(os.path.join(d, "seccomp-goscope.json")) as f:
        prof = json.load(f)
    if prof.get("defaultAction") not in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL"):
        bad.append("seccomp profile's default action allows: %s" % prof.get("defaultAction"))
    allowed = {n for r in prof.get("syscalls", []) if r.get("action") == "SCMP_ACT_ALLOW"
               and not r.get("args") for n in r["names"]}
    refused = {n for r in prof.get("syscalls", []) if r.get("action") != "SCMP_ACT_ALLOW" for n in r["names"]}
    if not NEEDED_SYSCALLS <= allowed or NEEDED_SYSCALLS & refused:
        bad.append("seccomp profile does not allow %s" % sorted(NEEDED_SYSCALLS))
    if any("includes" in r or "excludes" in r for r in prof.get("syscalls", [])):
        bad.append("seccomp profile has Docker-only includes/excludes (containerd ignores them)")
    return bad


def podman_flags(d):
    """The DaemonSet's security context as podman run flags."""
    _, docs = load_all(d)
    ds = one(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    sc = agent_container(ds)["securityContext"]
    out = []
    if pod.get("hostPID"):
        out.append("--pid=host")
    for c in sc.get("capabilities", {}).get("drop", []):
        out.append("--cap-drop=" + c)
    for c in sc.get("capabilities", {}).get("add", []):
        out.append("--cap-add=" + c)
    sp = sc.get("seccompProfile", {})
    if sp.get("type") == "Localhost":
        out.append("--security-opt=seccomp=" + os.path.join(os.path.abspath(d), "seccomp-goscope.json"))
    elif sp.get("type") == "Unconfined":
        out.append("--security-opt=seccomp=unconfined")
    if sc.get("allowPrivilegeEscalation") is False:
        out.append("--security-opt=no-new-privileges")
    if sc.get("readOnlyRootFilesystem"):
        # Kubernetes mounts nothing writable that the pod does not declare; podman would
        # add tmpfs on /tmp, /var/tmp and /run.
        out += ["--read-only", "--read-only-tmpfs=false"]
    for k, flag in (("runAsUser", "--user="),):
        if k in sc:
            out.append(flag + str(sc[k]))
    return out


def main(argv):
    if len(argv) >= 3 and argv[1] == "check":
        bad = check(argv[2])
        for b in bad:
            print("manifest: " + b, file=sys.stderr)
        return 1 if bad else 0
    if len(argv) >= 3 and argv[1] == "podman-flags":
        print("\n".join(podman_flags(argv[2])))
        return 0
    if len(argv) >= 3 and argv[1] == "init-command":
        _, docs = load_all(argv[2])
        init = one(docs, "DaemonSet")["spec"]["template"]["spec"]["initContainers"][0]
        sys.stdout.write("\0".join(init.get("command", []) + init.get("args", [])))
        return 0
    if len(argv) >= 3 and argv[1] == "env":
        _, docs = load_all(argv[2])
        for k, v in one(docs, "ConfigMap").get("data", {}).items():
            print("%s=%s" % (k, v))
        return 0
    if len(argv) >= 4 and argv[1] == "probe":
        _, docs = load_all(argv[2])
        agent = agent_container(one(docs, "DaemonSet"))
        sys.stdout.write("\0".join(agent[argv[3] + "Probe"]["exec"]["command"]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
