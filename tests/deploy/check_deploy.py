#!/usr/bin/python3
"""Checks the deployment files in deploy/ without network access, kubectl or a container engine.

  /usr/bin/python3 tests/deploy/check_deploy.py [-v]

- deploy/kubernetes/*.yaml: kinds, replicas, probes (native grpc probes on the plaintext,
  health-only --health-listen port 8081, since the main port serves TLS; the Service doesn't
  expose 8081), security contexts, resources, the PodDisruptionBudget, the Service, the migration Job, and
  that the Secret and ConfigMap keys that the pods use exist (the ConfigMap's approvald.yaml must
  parse and have action_types); the Deployment serves TLS from the `approvald-tls` Secret;
- deploy/container/compose.yaml and deploy/container/Containerfile (two stages, build packages
  in step with deploy/lib/common.sh, runtime libraries, a non-root USER, port 50051);
- approvald's listener rule everywhere it serves: a --listen that isn't loopback has
  --tls-cert/--tls-key or --allow-insecure (else approvald refuses to start), TLS flags come in
  valid combinations, and no `TODO(tls)` is left in deploy/;
- deploy/approvald.yaml parses and has action_types;
- deploy/systemd/*.service: the hardening and service keys, read from the unit files, and the
  commented TLS drop-in of approvald.service; then, if /usr/bin/systemd-analyze works here,
  `systemd-analyze verify` on copies of the units whose approvald path points at a dummy
  executable, also with the TLS drop-in applied (and the offline `systemd-analyze security`
  score). If verify can't run on this machine (no systemd), only the parsed keys are checked;
  the output says which path was taken.

Needs python3-yaml (apt-get install python3-yaml). Prints `N passed, M failed` last and exits 1
if anything failed.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

try:
    import yaml
except ImportError:
    print("error: python3-yaml is missing (apt-get install python3-yaml; run with /usr/bin/python3)")
    sys.exit(2)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
CONTAINER = DEPLOY / "container"
SYSTEMD = DEPLOY / "systemd"
VERBOSE = "-v" in sys.argv[1:]

ACTION_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
# `<sha256-hex> <principal> [roles]`, or `cert <certificate identity> [roles]`.
TOKEN_LINE = re.compile(r"^([0-9a-fA-F]{64}|cert)\s+\S+(\s+\S+)?$")
HEALTH_SERVICE = "approvals.v1.ApprovalService"
GRPC_PORT = 50051
# The Deployment's --health-listen port: plaintext, grpc.health.v1.Health only, for the kubelet.
HEALTH_PORT = 8081
RUNTIME_PACKAGES = {"libgrpc++1.51", "libprotobuf32", "libpq5", "libyaml-cpp0.7", "libre2-9",
                    "libspdlog1.10", "libssl3", "libjemalloc2", "libmicrohttpd12", "libgnutls30", "libcurl4",
                    "ca-certificates"}
# approvald's default --listen, and the Secret that the Deployment's certificate comes from.
DEFAULT_LISTEN = "127.0.0.1:50051"
TLS_SECRET = "approvald-tls"
# Default of approvald's --shutdown-grace.
DEFAULT_SHUTDOWN_GRACE = 10.0

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        if VERBOSE:
            print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
    return bool(ok)


def note(msg):
    print(f"note  {msg}")


def section(title):
    """Runs a group of checks; an exception in it is one failure, not a crash."""
    def wrap(fn):
        def run():
            print(f"== {title}")
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - report and go on with the next section
                check(f"{title}: no unexpected error", False,
                      f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        return run
    return wrap


# ---------------------------------------------------------------------------------------------
# Helpers


def rel(p):
    try:
        return str(Path(p).relative_to(ROOT))
    except ValueError:
        return str(p)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def parse_duration(text):
    """'10s', '1m30s', '2min', '500ms', '20' (seconds) -> seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h)", text):
        if m.start() != pos:
            raise ValueError(f"bad duration {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"bad duration {text!r}")
    return total


def flag_value(args, name):
    """The value of --name (or --name=value) in an argument list; None when absent."""
    value = None
    for i, a in enumerate(args):
        spelled = a.replace("_", "-") if a.startswith("--") else a
        if spelled.startswith(f"--{name}="):
            value = a.split("=", 1)[1]
        elif spelled == f"--{name}" and i + 1 < len(args):
            value = args[i + 1]
    return value


def flag_bool(args, name):
    """A boolean flag as absl reads it (--name, --name=true, --noname, --name=false; the last
    one wins); False when absent."""
    value = False
    for a in args:
        spelled = a.replace("_", "-") if a.startswith("--") else a
        if spelled == f"--{name}":
            value = True
        elif spelled == f"--no{name}":
            value = False
        elif spelled.startswith(f"--{name}="):
            value = spelled.split("=", 1)[1].lower() in ("true", "t", "yes", "y", "1")
    return value


def is_loopback(listen):
    """approvald's IsLoopbackAddress: localhost, ::1 or 127.x as the host of host:port."""
    host = listen[:listen.rfind(":")] if ":" in listen else listen
    if len(host) >= 2 and host[0] == "[" and host[-1] == "]":
        host = host[1:-1]
    return host in ("localhost", "::1") or host.startswith("127.")


def check_listener(label, args):
    """approvald's start-up rule for serving with these arguments (ServerCredentials and main.cc):
    plaintext only on loopback unless --allow-insecure; TLS flags in valid combinations.
    Returns 'tls', 'insecure' or 'loopback'."""
    listen = flag_value(args, "listen") or DEFAULT_LISTEN
    cert, key = flag_value(args, "tls-cert"), flag_value(args, "tls-key")
    ca = flag_value(args, "tls-client-ca")
    insecure = flag_bool(args, "allow-insecure")
    check(f"{label}: --tls-cert and --tls-key go together", bool(cert) == bool(key), (cert, key))
    check(f"{label}: --tls-client-ca (if set) comes with --tls-cert/--tls-key",
          not ca or (cert and key), (ca, cert, key))
    check(f"{label}: --principal-from-cert (if set) comes with --tls-client-ca",
          not flag_bool(args, "principal-from-cert") or ca, args)
    tls = bool(cert and key)
    check(f"{label}: --listen={listen} is loopback, or has TLS flags or --allow-insecure "
          "(approvald refuses plaintext on it otherwise)",
          tls or insecure or is_loopback(listen), args)
    check(f"{label}: not both TLS and --allow-insecure (contradictory)", not (tls and insecure), args)
    return "tls" if tls else ("insecure" if insecure and not is_loopback(listen) else "loopback")


def containerfile_entrypoint():
    """The exec-form ENTRYPOINT of deploy/container/Containerfile's last stage ([] if none)."""
    eps = [a for w, a in containerfile_instructions(CONTAINER / "Containerfile") if w == "ENTRYPOINT"]
    try:
        return [str(x) for x in json.loads(eps[-1])] if eps else []
    except json.JSONDecodeError:
        return []


def subset(small, big):
    return isinstance(small, dict) and isinstance(big, dict) and small and all(
        big.get(k) == v for k, v in small.items())


def check_action_config(label, doc):
    check(f"{label}: is a mapping", isinstance(doc, dict), type(doc).__name__)
    if not isinstance(doc, dict):
        return
    types = doc.get("action_types")
    check(f"{label}: has a non-empty action_types list", isinstance(types, list) and types,
          repr(types)[:200])
    if not isinstance(types, list):
        return
    names = [t.get("name") for t in types if isinstance(t, dict)]
    check(f"{label}: every action type is a mapping with a valid name",
          len(names) == len(types) and all(isinstance(n, str) and ACTION_TYPE_NAME.match(n)
                                           for n in names), repr(names))
    check(f"{label}: action type names are unique", len(names) == len(set(names)), repr(names))
    unknown = set(doc) - {"version", "action_types"}
    check(f"{label}: only known top-level keys", not unknown, repr(sorted(unknown)))


# ---------------------------------------------------------------------------------------------
# Kubernetes

K = {}          # kind -> document
K_FILES = {}    # kind -> file name


@section("kubernetes: files")
def k8s_files():
    files = sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))
    check("deploy/kubernetes has YAML files", files, str(K8S))
    expected = {"configmap.yaml": "ConfigMap", "secret.yaml": "Secret",
                "migrate-job.yaml": "Job", "deployment.yaml": "Deployment",
                "service.yaml": "Service", "pdb.yaml": "PodDisruptionBudget"}
    for f in files:
        try:
            docs = load_yaml_docs(f)
        except yaml.YAMLError as e:
            check(f"{rel(f)}: parses", False, str(e))
            continue
        check(f"{rel(f)}: parses", True)
        check(f"{rel(f)}: holds one object", len(docs) == 1, f"{len(docs)} documents")
        for d in docs:
            kind = d.get("kind") if isinstance(d, dict) else None
            meta = d.get("metadata", {}) if isinstance(d, dict) else {}
            check(f"{rel(f)}: has apiVersion, kind and metadata.name",
                  kind and d.get("apiVersion") and meta.get("name"), repr(d)[:200])
            check(f"{rel(f)}: {kind} is namespace-agnostic (no metadata.namespace)",
                  "namespace" not in meta, meta.get("namespace"))
            check(f"{rel(f)}: {kind} is the only {kind}", kind not in K, f"also in {K_FILES.get(kind)}")
            K[kind] = d
            K_FILES[kind] = f.name
    for name, kind in expected.items():
        check(f"{name} defines a {kind}", K_FILES.get(kind) == name,
              f"{kind} found in {K_FILES.get(kind)}")
    versions = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Job": "batch/v1",
                "Deployment": "apps/v1", "PodDisruptionBudget": "policy/v1"}
    for kind, api in versions.items():
        if kind in K:
            check(f"{kind} apiVersion is {api}", K[kind].get("apiVersion") == api,
                  K[kind].get("apiVersion"))


def pod_container(workload):
    spec = workload["spec"]["template"]["spec"]
    containers = spec.get("containers") or []
    check(f"{workload['kind']}: has exactly one container", len(containers) == 1, len(containers))
    return spec, containers[0]


def check_pod_security(label, pod, c):
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    check(f"{label}: runAsNonRoot",
          csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"pod {psc}, container {csc}")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    check(f"{label}: runAsUser (if set) is not 0", uid is None or uid != 0, uid)
    check(f"{label}: readOnlyRootFilesystem", csc.get("readOnlyRootFilesystem") is True, csc)
    check(f"{label}: allowPrivilegeEscalation false",
          csc.get("allowPrivilegeEscalation") is False, csc)
    drop = ((csc.get("capabilities") or {}).get("drop")) or []
    check(f"{label}: drops ALL capabilities", "ALL" in drop, drop)
    check(f"{label}: adds no capabilities", not (csc.get("capabilities") or {}).get("add"), csc)
    check(f"{label}: not privileged", not csc.get("privileged"), csc)
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        check(f"{label}: resources.{part} has cpu and memory",
              {"cpu", "memory"} <= set((res.get(part) or {}).keys()), res.get(part))
    check(f"{label}: automountServiceAccountToken false",
          pod.get("automountServiceAccountToken") is False, pod.get("automountServiceAccountToken"))


def check_env_from_secret(label, c, var, required_key=None):
    env = {e.get("name"): e for e in c.get("env") or []}
    e = env.get(var)
    ref = ((e or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    ok = check(f"{label}: env {var} comes from a secretKeyRef", ref, e)
    if not ok:
        return
    secret = K.get("Secret", {})
    keys = set((secret.get("stringData") or {}).keys()) | set((secret.get("data") or {}).keys())
    check(f"{label}: env {var} refers to the Secret of secret.yaml",
          ref.get("name") == secret.get("metadata", {}).get("name"), ref)
    check(f"{label}: env {var} refers to an existing key (or is optional)",
          ref.get("key") in keys or ref.get("optional") is True, f"{ref} not in {sorted(keys)}")
    if required_key:
        check(f"{label}: env {var} uses key {required_key}", ref.get("key") == required_key, ref)


def container_args(c):
    return [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]


def check_file_from_volume(pod, c, args, flag, kind, manifest, source_name, want_name, keys):
    """The file that --flag names comes from a volume of the `kind` object of `manifest`
    (source_name(volume) is the object's name want_name), whose keys hold the one it mounts."""
    path = flag_value(args, flag)
    if not check(f"Deployment: --{flag} is set", path, args):
        return
    vol, key = resolve_mount(pod, c, path)
    if not check(f"Deployment: --{flag} comes from a volume", vol, key):
        return
    check(f"Deployment: --{flag} volume is the {kind} of {manifest}", source_name(vol) == want_name,
          vol)
    check(f"Deployment: {kind} has the key {key}", key in keys, sorted(keys))


def resolve_mount(pod, c, path):
    """The (volume, key) that a file path in the container comes from, or (None, reason)."""
    best = None
    for m in c.get("volumeMounts") or []:
        mp = m.get("mountPath", "").rstrip("/")
        if path.startswith(mp + "/") and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    if best is None:
        return None, f"{path} is not under any volumeMount"
    if best.get("subPath"):
        return None, f"{path}: subPath mount {best['subPath']} (updates would not reach the pod)"
    inner = path[len(best["mountPath"].rstrip("/")) + 1:]
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    vol = vols.get(best.get("name"))
    if vol is None:
        return None, f"volume {best.get('name')} is not defined"
    src = vol.get("configMap") or vol.get("secret")
    if src is None:
        return None, f"volume {best.get('name')} is neither a configMap nor a secret"
    items = src.get("items")
    if items:
        keys = [i.get("key") for i in items if i.get("path") == inner]
        if not keys:
            return None, f"no item of volume {vol['name']} has path {inner}"
        return vol, keys[0]
    return vol, inner


@section("kubernetes: Deployment")
def k8s_deployment():
    d = K["Deployment"]
    spec = d["spec"]
    check("Deployment: replicas 3", spec.get("replicas") == 3, spec.get("replicas"))
    pod_labels = spec["template"]["metadata"].get("labels") or {}
    check("Deployment: selector matches the pod labels",
          subset(spec["selector"].get("matchLabels"), pod_labels),
          f"{spec['selector']} vs {pod_labels}")
    pod, c = pod_container(d)
    check("Deployment: container has an image", c.get("image"), c.get("image"))
    ports = c.get("ports") or []
    grpc_ports = [p for p in ports if p.get("name") == "grpc"]
    check("Deployment: container port 50051 named grpc",
          len(grpc_ports) == 1 and grpc_ports[0].get("containerPort") == GRPC_PORT, ports)

    health_ports = [p for p in ports if p.get("name") == "health"]
    check(f"Deployment: container port {HEALTH_PORT} named health",
          len(health_ports) == 1 and health_ports[0].get("containerPort") == HEALTH_PORT, ports)

    # Port 50051 serves TLS and the kubelet's grpc probe speaks plaintext only, so the probes
    # are grpc probes on the plaintext, health-only --health-listen port (a grpc probe on 50051
    # would fail every time and restart the pods).
    args = container_args(c)
    health_listen = flag_value(args, "health-listen")
    check(f"Deployment: args have --health-listen on port {HEALTH_PORT}",
          health_listen is not None and health_listen.rpartition(":")[2] == str(HEALTH_PORT),
          health_listen)
    check("Deployment: --health-listen is not loopback (the kubelet probes the pod's IP)",
          health_listen is not None and not is_loopback(health_listen), health_listen)

    # kind -> the health service it must check ("" is the server as a whole).
    want_service = {"startupProbe": "", "readinessProbe": HEALTH_SERVICE, "livenessProbe": ""}
    for kind, service in want_service.items():
        p = c.get(kind)
        if not check(f"Deployment: has a {kind}", isinstance(p, dict), p):
            continue
        g = p.get("grpc")
        others = sorted({"tcpSocket", "httpGet", "exec"} & set(p))
        check(f"Deployment: {kind} is a native grpc probe", isinstance(g, dict) and not others, p)
        if not isinstance(g, dict):
            continue
        check(f"Deployment: {kind} grpc port is {HEALTH_PORT} (a number; not the TLS port)",
              g.get("port") == HEALTH_PORT and not isinstance(g.get("port"), bool), g.get("port"))
        # An omitted service means "" to the kubelet.
        check(f"Deployment: {kind} checks service {service!r}",
              g.get("service", "") == service, g.get("service"))
    live = c.get("livenessProbe") or {}
    tolerance = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
    check("Deployment: livenessProbe outlasts a database failover (>= 60s)",
          tolerance >= 60, f"{tolerance}s")

    check_pod_security("Deployment", pod, c)
    listen = flag_value(args, "listen")
    check("Deployment: --listen (if set) is 0.0.0.0:50051",
          listen in (None, f"0.0.0.0:{GRPC_PORT}"), listen)
    # What approvald sees: the image's ENTRYPOINT (unless command replaces it), then args.
    full = container_args(c) if c.get("command") else containerfile_entrypoint()[1:] + args
    mode = check_listener("Deployment", full)
    check("Deployment: serves TLS (--tls-cert/--tls-key), not --allow-insecure", mode == "tls", full)
    secret_keys = {"tls-cert": "tls.crt", "tls-key": "tls.key"}
    for flag, want_key in secret_keys.items():
        path = flag_value(args, flag)
        if not path:
            continue
        vol, key = resolve_mount(pod, c, path)
        if check(f"Deployment: --{flag} comes from a volume", vol, key):
            check(f"Deployment: --{flag} is key {want_key} of the Secret {TLS_SECRET}",
                  (vol.get("secret") or {}).get("secretName") == TLS_SECRET and key == want_key,
                  (vol, key))
            mounts = [m for m in c.get("volumeMounts") or [] if m.get("name") == vol.get("name")]
            check(f"Deployment: the {TLS_SECRET} volume is mounted read-only",
                  mounts and all(m.get("readOnly") is True for m in mounts), mounts)
            mode_bits = (vol.get("secret") or {}).get("defaultMode", 0o644)
            fs_group = (pod.get("securityContext") or {}).get("fsGroup")
            uid = ((c.get("securityContext") or {}).get("runAsUser")
                   or (pod.get("securityContext") or {}).get("runAsUser"))
            # Secret files are owned by root (group fsGroup if set): approvald must be able to
            # read the key through the "other" bits or, with fsGroup, the group bits.
            check(f"Deployment: --{flag} is readable by the pod's user",
                  (mode_bits & 0o004) or (fs_group is not None and mode_bits & 0o040) or uid == 0,
                  f"defaultMode {oct(mode_bits)}, fsGroup {fs_group}")
    raw = (K8S / K_FILES["Deployment"]).read_text(encoding="utf-8")
    check("Deployment: shows --tls-client-ca and --principal-from-cert (commented, optional)",
          re.search(r"^\s*#\s*- --tls-client-ca=", raw, re.M)
          and re.search(r"^\s*#\s*- --principal-from-cert", raw, re.M), "")
    check("Deployment: --dsn=$(APPROVALD_DSN)", flag_value(args, "dsn") == "$(APPROVALD_DSN)",
          flag_value(args, "dsn"))
    check_env_from_secret("Deployment", c, "APPROVALD_DSN", "dsn")
    grace = parse_duration(flag_value(args, "shutdown-grace") or DEFAULT_SHUTDOWN_GRACE)
    pre = ((c.get("lifecycle") or {}).get("preStop") or {})
    pre_sleep = 0.0
    cmd = ((pre.get("exec") or {}).get("command")) or []
    if cmd and os.path.basename(str(cmd[0])) == "sleep" and len(cmd) == 2:
        pre_sleep = parse_duration(cmd[1])
    elif "sleep" in pre:
        pre_sleep = float(pre["sleep"].get("seconds", 0))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    check("Deployment: terminationGracePeriodSeconds above preStop + --shutdown-grace",
          tgps > pre_sleep + grace, f"{tgps} vs {pre_sleep} + {grace}")

    cm = K.get("ConfigMap", {})
    check_file_from_volume(pod, c, args, "config", "ConfigMap", "configmap.yaml",
                           lambda vol: (vol.get("configMap") or {}).get("name"),
                           cm.get("metadata", {}).get("name"), set(cm.get("data") or {}))
    secret = K.get("Secret", {})
    check_file_from_volume(pod, c, args, "tokens", "Secret", "secret.yaml",
                           lambda vol: (vol.get("secret") or {}).get("secretName"),
                           secret.get("metadata", {}).get("name"),
                           set((secret.get("stringData") or {})) | set((secret.get("data") or {})))
    strategy = spec.get("strategy") or {}
    ru = strategy.get("rollingUpdate") or {}
    check("Deployment: rolling update keeps all replicas (maxUnavailable 0)",
          strategy.get("type", "RollingUpdate") == "RollingUpdate" and ru.get("maxUnavailable") == 0,
          strategy)


@section("kubernetes: Service")
def k8s_service():
    s = K["Service"]["spec"]
    check("Service: type ClusterIP", s.get("type", "ClusterIP") == "ClusterIP", s.get("type"))
    ports = s.get("ports") or []
    check("Service: one port", len(ports) == 1, ports)
    p = ports[0]
    check("Service: port 50051", p.get("port") == GRPC_PORT, p)
    check("Service: port named grpc", p.get("name") == "grpc", p)
    check("Service: appProtocol grpc", p.get("appProtocol") == "grpc", p)
    d = K["Deployment"]
    _, c = pod_container(d)
    names = {cp.get("name"): cp.get("containerPort") for cp in c.get("ports") or []}
    target = p.get("targetPort", p.get("port"))
    check("Service: targetPort is the container's grpc port",
          names.get(target) == GRPC_PORT if isinstance(target, str) else target == GRPC_PORT,
          target)
    check("Service: selector matches the Deployment's pods",
          subset(s.get("selector"), d["spec"]["template"]["metadata"].get("labels") or {}),
          s.get("selector"))
    # The health port is plaintext and for the kubelet only.
    exposed = [sp for sp in ports
               if HEALTH_PORT in (sp.get("port"), sp.get("targetPort"))
               or sp.get("targetPort") == "health"
               or names.get(sp.get("targetPort")) == HEALTH_PORT]
    check(f"Service: does not expose the health port {HEALTH_PORT}", not exposed, exposed)


@section("kubernetes: PodDisruptionBudget")
def k8s_pdb():
    s = K["PodDisruptionBudget"]["spec"]
    check("PDB: minAvailable 2", s.get("minAvailable") == 2, s.get("minAvailable"))
    check("PDB: minAvailable below the replicas", s.get("minAvailable", 0) <
          K["Deployment"]["spec"].get("replicas", 1), s)
    check("PDB: selector matches the Deployment's pods",
          subset((s.get("selector") or {}).get("matchLabels"),
                 K["Deployment"]["spec"]["template"]["metadata"].get("labels") or {}),
          s.get("selector"))


@section("kubernetes: migration Job")
def k8s_job():
    j = K["Job"]
    pod, c = pod_container(j)
    args = container_args(c)
    check("Job: command/args contain `migrate`", "migrate" in args, args)
    check("Job: --dsn=$(APPROVALD_DSN)", flag_value(args, "dsn") == "$(APPROVALD_DSN)", args)
    check_env_from_secret("Job", c, "APPROVALD_DSN", "dsn")
    check("Job: restartPolicy Never or OnFailure",
          pod.get("restartPolicy") in ("Never", "OnFailure"), pod.get("restartPolicy"))
    _, dc = pod_container(K["Deployment"])
    check("Job: same image as the Deployment", c.get("image") == dc.get("image"),
          f"{c.get('image')} vs {dc.get('image')}")
    check_pod_security("Job", pod, c)


@section("kubernetes: ConfigMap and Secret")
def k8s_config():
    cm = K["ConfigMap"]
    text = (cm.get("data") or {}).get("approvald.yaml")
    check("ConfigMap: has data approvald.yaml", isinstance(text, str), sorted(cm.get("data") or {}))
    if isinstance(text, str):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            check("ConfigMap approvald.yaml: parses", False, str(e))
        else:
            check("ConfigMap approvald.yaml: parses", True)
            check_action_config("ConfigMap approvald.yaml", doc)
    s = K["Secret"]
    data = dict(s.get("stringData") or {})
    check("Secret: keys tokens and dsn (stringData)", {"tokens", "dsn"} <= set(data), sorted(data))
    raw = (K8S / K_FILES["Secret"]).read_text(encoding="utf-8")
    check("Secret: says that real values come from a secret manager",
          re.search(r"secret manager", raw, re.I), "no such comment")
    bad = [ln for ln in str(data.get("tokens", "")).splitlines()
           if ln.strip() and not ln.strip().startswith("#") and not TOKEN_LINE.match(ln.strip())]
    check("Secret: tokens lines are `<sha256-hex> <principal> [roles]` or comments", not bad, bad)


# ---------------------------------------------------------------------------------------------
# deploy/approvald.yaml


@section("deploy/approvald.yaml")
def example_config():
    doc = load_yaml_docs(DEPLOY / "approvald.yaml")
    check("deploy/approvald.yaml: one document", len(doc) == 1, len(doc))
    check_action_config("deploy/approvald.yaml", doc[0])


# ---------------------------------------------------------------------------------------------
# Container


def containerfile_instructions(path):
    """[(INSTRUCTION, argument text)] with continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # a comment inside a continued instruction
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        if buf:
            word, _, rest = buf.partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    if buf:
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def apt_installed(run_text):
    pkgs = set()
    for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|;|$)", run_text):
        pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def common_packages():
    text = (DEPLOY / "lib" / "common.sh").read_text(encoding="utf-8")
    m = re.search(r"APPROVALD_PACKAGES=\((.*?)\)", text, re.S)
    return set(m.group(1).split()) if m else set()


@section("container: Containerfile")
def containerfile():
    path = CONTAINER / "Containerfile"
    ins = containerfile_instructions(path)
    froms = [i for i, (w, _) in enumerate(ins) if w == "FROM"]
    check("Containerfile: two FROM stages", len(froms) == 2, [ins[i][1] for i in froms])
    if len(froms) != 2:
        return
    build = ins[froms[0] + 1:froms[1]]
    runtime = ins[froms[1] + 1:]
    first = ins[froms[0]][1].split()
    check("Containerfile: build stage is `debian:12 AS <name>`",
          len(first) == 3 and first[0] == "debian:12" and first[1].upper() == "AS", first)
    stage = first[2] if len(first) == 3 else None
    check("Containerfile: runtime stage is debian:12-slim",
          ins[froms[1]][1].split()[0] == "debian:12-slim", ins[froms[1]][1])

    build_runs = " ".join(a for w, a in build if w == "RUN")
    want = common_packages() - {"postgresql-15"}
    check("deploy/lib/common.sh: APPROVALD_PACKAGES found", want, "")
    got = apt_installed(build_runs)
    check("Containerfile: build packages = APPROVALD_PACKAGES minus postgresql-15",
          got == want, f"missing {sorted(want - got)}, extra {sorted(got - want)}")
    check("Containerfile: builds with cmake/Ninja, Release, into /src/build",
          re.search(r"cmake\s.*-B\s*/src/build", build_runs) and "-G Ninja" in build_runs
          and "-DCMAKE_BUILD_TYPE=Release" in build_runs and "cmake --build /src/build" in build_runs,
          build_runs[:300])
    check("Containerfile: runs no tests", not re.search(r"\bctest\b|tests/run", build_runs),
          build_runs[:300])

    run_runs = " ".join(a for w, a in runtime if w == "RUN")
    got = apt_installed(run_runs)
    check("Containerfile: runtime installs only the runtime libraries",
          got == RUNTIME_PACKAGES, f"missing {sorted(RUNTIME_PACKAGES - got)}, "
          f"extra {sorted(got - RUNTIME_PACKAGES)}")
    check("Containerfile: apt lists removed in both stages",
          "rm -rf /var/lib/apt/lists" in build_runs and "rm -rf /var/lib/apt/lists" in run_runs, "")

    copies = [a for w, a in runtime if w == "COPY"]
    from_build = [a for a in copies if a.startswith(f"--from={stage} ")]
    copied = " ".join(from_build)
    check("Containerfile: copies approvald and approvalctl from the build stage",
          "/src/build/server/approvald" in copied and "/src/build/client/approvalctl" in copied,
          copies)
    check("Containerfile: copies deploy/approvald.yaml",
          any(a.split()[0] == "deploy/approvald.yaml" for a in copies), copies)
    # Every COPY from the build context names something that exists (context = repo root).
    for w, a in build + runtime:
        if w != "COPY" or a.startswith("--from="):
            continue
        srcs = [s for s in a.split()[:-1] if not s.startswith("--")]
        for s in srcs:
            check(f"Containerfile: COPY source {s} exists in the repository", (ROOT / s).exists(), s)

    users = [a for w, a in runtime if w == "USER"]
    user = users[-1].split(":")[0] if users else None
    check("Containerfile: runtime stage sets a non-root USER",
          user is not None and user not in ("root", "0"), users)
    check("Containerfile: the USER is numeric (for Kubernetes runAsNonRoot)",
          user is not None and user.isdigit(), user)
    exposes = " ".join(a for w, a in runtime if w == "EXPOSE").split()
    check("Containerfile: EXPOSE 50051", str(GRPC_PORT) in exposes or f"{GRPC_PORT}/tcp" in exposes,
          exposes)
    eps = [a for w, a in runtime if w == "ENTRYPOINT"]
    try:
        ep = json.loads(eps[-1]) if eps else []
    except json.JSONDecodeError:
        ep = []
    check("Containerfile: exec-form ENTRYPOINT approvald --listen=0.0.0.0:50051",
          ep and os.path.basename(ep[0]) == "approvald"
          and flag_value(ep, "listen") == f"0.0.0.0:{GRPC_PORT}", eps)


@section("container: compose.yaml")
def compose():
    path = CONTAINER / "compose.yaml"
    docs = load_yaml_docs(path)
    check("compose.yaml: one document", len(docs) == 1, len(docs))
    svc = docs[0].get("services") or {}
    check("compose.yaml: services postgres, migrate and approvald",
          {"postgres", "migrate", "approvald"} <= set(svc), sorted(svc))
    pg = svc["postgres"]
    check("compose.yaml: postgres uses a postgres:15 image",
          re.search(r"(^|/)postgres:15(\.|-|$)", str(pg.get("image"))), pg.get("image"))
    test = pg.get("healthcheck", {}).get("test")
    test_text = " ".join(test) if isinstance(test, list) else str(test)
    check("compose.yaml: postgres healthcheck runs pg_isready", "pg_isready" in test_text, test)
    for src in [v.split(":")[0] for v in pg.get("volumes") or [] if isinstance(v, str)]:
        if src.startswith((".", "/")):
            check(f"compose.yaml: postgres bind source {src} exists", (CONTAINER / src).exists(), src)

    def command(s):
        c = s.get("command") or []
        return shlex.split(c) if isinstance(c, str) else [str(x) for x in c]

    mig = svc["migrate"]
    check("compose.yaml: migrate runs `migrate`", "migrate" in command(mig), command(mig))
    check("compose.yaml: migrate waits for a healthy postgres",
          (mig.get("depends_on") or {}).get("postgres", {}).get("condition") == "service_healthy",
          mig.get("depends_on"))
    check("compose.yaml: migrate does not restart", str(mig.get("restart", "no")) == "no",
          mig.get("restart"))
    app = svc["approvald"]
    check("compose.yaml: approvald waits for migrate to complete",
          (app.get("depends_on") or {}).get("migrate", {}).get("condition")
          == "service_completed_successfully", app.get("depends_on"))
    for name in ("migrate", "approvald"):
        b = svc[name].get("build") or {}
        if b:
            cf = (CONTAINER / b.get("context", ".") / b.get("dockerfile", "Dockerfile")).resolve()
            check(f"compose.yaml: {name} builds deploy/container/Containerfile",
                  cf == (CONTAINER / "Containerfile").resolve(), str(cf))
    check("compose.yaml: migrate and approvald use the same image",
          mig.get("image") == app.get("image") and app.get("image"), (mig.get("image"), app.get("image")))
    args = command(app)
    tokens = flag_value(args, "tokens") or "/etc/approvald/tokens"
    mounts = []
    for v in app.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            mounts.append({"source": parts[0], "target": parts[1] if len(parts) > 1 else parts[0]})
        else:
            mounts.append(v)
    tm = [m for m in mounts if m.get("target") == tokens]
    check(f"compose.yaml: approvald mounts the tokens file at {tokens} from a file",
          tm and str(tm[0].get("source", "")).startswith((".", "/")), mounts)
    if tm and isinstance(tm[0], dict) and tm[0].get("type") == "bind":
        check("compose.yaml: a missing tokens file is an error, not an empty directory",
              (tm[0].get("bind") or {}).get("create_host_path") is False, tm[0])
    ports = [str(p) for p in app.get("ports") or []]
    check("compose.yaml: approvald publishes container port 50051",
          any(p.endswith(f":{GRPC_PORT}") or p == str(GRPC_PORT) for p in ports), ports)
    ep = app.get("entrypoint")
    ep = (shlex.split(ep) if isinstance(ep, str) else [str(x) for x in ep]) if ep else \
        containerfile_entrypoint()
    mode = check_listener("compose.yaml approvald", ep[1:] + args)
    check("compose.yaml: approvald has --allow-insecure (plaintext demo)",
          flag_bool(args, "allow-insecure"), args)
    if mode != "tls":
        check("compose.yaml: plaintext approvald is published on 127.0.0.1 only",
              ports and all(p.startswith("127.0.0.1:") for p in ports), ports)
    grace = parse_duration(flag_value(args, "shutdown-grace") or DEFAULT_SHUTDOWN_GRACE)
    stop = parse_duration(app.get("stop_grace_period", "10s"))
    check("compose.yaml: stop_grace_period above --shutdown-grace", stop > grace, (stop, grace))


# ---------------------------------------------------------------------------------------------
# systemd


def parse_unit(path):
    """{section: {key: [values in order]}}; a backslash at the end of a line continues it."""
    return parse_unit_text(path.read_text(encoding="utf-8"), path.name)


# A commented unit line (`#Key=value` or `#[Section]`, no space after the #), as opposed to prose.
COMMENTED_SETTING = re.compile(r"^#(\[[A-Za-z]+\]|[A-Za-z]+=.*)$")


def tls_drop_in():
    """The commented TLS drop-in of approvald.service, uncommented."""
    lines = (SYSTEMD / UNIT_SERVER).read_text(encoding="utf-8").splitlines()
    return "".join(m.group(1) + "\n" for m in map(COMMENTED_SETTING.match, lines) if m)


def parse_unit_text(text, name):
    units, sect, buf = {}, None, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line, buf = buf + line, ""
        if line.startswith("[") and line.endswith("]"):
            sect = line[1:-1]
            units.setdefault(sect, {})
            continue
        if "=" not in line or sect is None:
            raise ValueError(f"{name}: cannot parse {line!r}")
        key, _, value = line.partition("=")
        units[sect].setdefault(key.strip(), []).append(value.strip())
    return units


def last(unit, sect, key):
    vals = unit.get(sect, {}).get(key)
    return vals[-1] if vals else None


HARDENING = {
    "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "NoNewPrivileges": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
}


def check_hardening(name, u):
    for k, v in HARDENING.items():
        check(f"{name}: {k}={v}", last(u, "Service", k) == v, last(u, "Service", k))
    fams = set(" ".join(u["Service"].get("RestrictAddressFamilies", [])).split())
    check(f"{name}: RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
          fams == {"AF_INET", "AF_INET6", "AF_UNIX"}, fams)
    filters = u["Service"].get("SystemCallFilter", [])
    check(f"{name}: SystemCallFilter=@system-service",
          any("@system-service" in f.split() and not f.startswith("~") for f in filters), filters)
    check(f"{name}: CapabilityBoundingSet= (empty)",
          "CapabilityBoundingSet" in u["Service"] and last(u, "Service", "CapabilityBoundingSet") == "",
          u["Service"].get("CapabilityBoundingSet"))
    check(f"{name}: EnvironmentFile=-/etc/approvald/env",
          "-/etc/approvald/env" in u["Service"].get("EnvironmentFile", []),
          u["Service"].get("EnvironmentFile"))


def exec_argv(value):
    """An Exec*= line as argv, without systemd's prefixes (-, @, :, +, !)."""
    argv = shlex.split(value)
    if argv:
        argv[0] = argv[0].lstrip("-@:+!")
    return argv


UNIT_SERVER = "approvald.service"
UNIT_MIGRATE = "approvald-migrate.service"


@section("systemd: unit keys (parsed from the files)")
def systemd_keys():
    u = parse_unit(SYSTEMD / UNIT_SERVER)
    check_hardening(UNIT_SERVER, u)
    s = u["Service"]
    check(f"{UNIT_SERVER}: ConfigurationDirectory=approvald",
          last(u, "Service", "ConfigurationDirectory") == "approvald", s.get("ConfigurationDirectory"))
    pre = [exec_argv(v) for v in s.get("ExecStartPre", [])]
    check(f"{UNIT_SERVER}: ExecStartPre runs approvald check-config /etc/approvald/approvald.yaml",
          any(a[:1] == ["/usr/local/bin/approvald"] and a[1:] == ["check-config", "/etc/approvald/approvald.yaml"]
              for a in pre), pre)
    starts = s.get("ExecStart", [])
    check(f"{UNIT_SERVER}: one ExecStart", len(starts) == 1, starts)
    argv = exec_argv(starts[-1]) if starts else []
    check(f"{UNIT_SERVER}: ExecStart runs /usr/local/bin/approvald",
          argv[:1] == ["/usr/local/bin/approvald"], argv[:1])
    check(f"{UNIT_SERVER}: --listen is set", flag_value(argv, "listen"), argv)
    mode = check_listener(UNIT_SERVER, argv[1:])
    check(f"{UNIT_SERVER}: listens on loopback in plaintext by default",
          mode == "loopback" and is_loopback(flag_value(argv, "listen") or DEFAULT_LISTEN), argv)
    drop_in = tls_drop_in()
    ok = check(f"{UNIT_SERVER}: has a commented TLS drop-in ([Service], LoadCredential=, ExecStart=)",
               "[Service]" in drop_in and "LoadCredential=" in drop_in
               and "\nExecStart=\n" in drop_in, drop_in)
    if ok:
        d = parse_unit_text(drop_in, "TLS drop-in")
        starts = d.get("Service", {}).get("ExecStart", [])
        targv = exec_argv(starts[-1]) if starts else []
        check(f"{UNIT_SERVER} TLS drop-in: resets ExecStart, then one new one",
              len(starts) == 2 and starts[0] == "", starts)
        check(f"{UNIT_SERVER} TLS drop-in: serves TLS on a non-loopback address",
              check_listener(f"{UNIT_SERVER} TLS drop-in", targv[1:]) == "tls"
              and not is_loopback(flag_value(targv, "listen") or DEFAULT_LISTEN), targv)
        creds = {v.split(":", 1)[0] for v in d["Service"].get("LoadCredential", [])}
        for flag in ("tls-cert", "tls-key"):
            value = flag_value(targv, flag) or ""
            check(f"{UNIT_SERVER} TLS drop-in: --{flag} is a LoadCredential= file (%d/<id>)",
                  value.startswith("%d/") and value[3:] in creds, (value, sorted(creds)))
        same = [f for f in ("tokens", "config", "dsn", "shutdown-grace")
                if flag_value(targv, f) != flag_value(argv, f)]
        check(f"{UNIT_SERVER} TLS drop-in: same other flags as ExecStart", not same, same)
    check(f"{UNIT_SERVER}: --tokens /etc/approvald/tokens",
          flag_value(argv, "tokens") == "/etc/approvald/tokens", flag_value(argv, "tokens"))
    check(f"{UNIT_SERVER}: --config /etc/approvald/approvald.yaml",
          flag_value(argv, "config") == "/etc/approvald/approvald.yaml", flag_value(argv, "config"))
    check(f"{UNIT_SERVER}: --dsn ${{APPROVALD_DSN}} (one argument even with spaces)",
          flag_value(argv, "dsn") == "${APPROVALD_DSN}", flag_value(argv, "dsn"))
    reload = [exec_argv(v) for v in s.get("ExecReload", [])]
    check(f"{UNIT_SERVER}: ExecReload=/bin/kill -HUP $MAINPID",
          ["/bin/kill", "-HUP", "$MAINPID"] in reload, reload)
    check(f"{UNIT_SERVER}: Restart=on-failure", last(u, "Service", "Restart") == "on-failure",
          last(u, "Service", "Restart"))
    check(f"{UNIT_SERVER}: KillSignal=SIGTERM", last(u, "Service", "KillSignal") == "SIGTERM",
          last(u, "Service", "KillSignal"))
    grace = parse_duration(flag_value(argv, "shutdown-grace") or DEFAULT_SHUTDOWN_GRACE)
    tss = last(u, "Service", "TimeoutStopSec")
    check(f"{UNIT_SERVER}: TimeoutStopSec above --shutdown-grace",
          tss is not None and grace < parse_duration(tss) <= grace + 60, f"{tss} vs {grace}s")
    check(f"{UNIT_SERVER}: [Install] WantedBy=multi-user.target",
          "multi-user.target" in " ".join(u.get("Install", {}).get("WantedBy", [])), u.get("Install"))

    m = parse_unit(SYSTEMD / UNIT_MIGRATE)
    check_hardening(UNIT_MIGRATE, m)
    check(f"{UNIT_MIGRATE}: Type=oneshot", last(m, "Service", "Type") == "oneshot",
          last(m, "Service", "Type"))
    margv = exec_argv(last(m, "Service", "ExecStart") or "")
    check(f"{UNIT_MIGRATE}: ExecStart runs `/usr/local/bin/approvald migrate`",
          margv[:2] == ["/usr/local/bin/approvald", "migrate"], margv)
    check(f"{UNIT_MIGRATE}: --dsn ${{APPROVALD_DSN}}", flag_value(margv, "dsn") == "${APPROVALD_DSN}",
          margv)
    check(f"{UNIT_SERVER}: ordered after {UNIT_MIGRATE}",
          UNIT_MIGRATE in " ".join(u.get("Unit", {}).get("After", [])), u.get("Unit"))


# Lines that only say that no systemd or D-Bus is running here.
NO_SYSTEMD = re.compile(
    r"(Failed to connect to (the )?(system |user )?bus|D-Bus|not been booted with systemd|"
    r"/run/systemd/|/run/dbus/|/sys/fs/cgroup|cgroup (filesystem|hierarchy|controller))", re.I)
# Another systemd-analyze, for testing this script's fallback; the default is the system one.
SYSTEMD_ANALYZE = os.environ.get("CHECK_DEPLOY_SYSTEMD_ANALYZE", "/usr/bin/systemd-analyze")


def run_verify(files, env):
    cmd = [SYSTEMD_ANALYZE, "verify", "--man=no"]
    help_text = subprocess.run([SYSTEMD_ANALYZE, "verify", "--help"],
                               capture_output=True, text=True, timeout=30).stdout
    if "--recursive-errors" in help_text:
        cmd.append("--recursive-errors=no")  # judge our units, not the host's other units
    p = subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True,
                       timeout=120, env=env)
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    return p.returncode, lines


@section("systemd: systemd-analyze")
def systemd_analyze():
    sa = Path(SYSTEMD_ANALYZE)
    if not (sa.exists() and os.access(sa, os.X_OK)):
        note(f"systemd path: {sa} not found; checked the unit keys by parsing the files only")
        return
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", LC_ALL="C")
    with tempfile.TemporaryDirectory(prefix="approvald-units-") as tmp:
        tmp = Path(tmp)
        dummy = tmp / "usr/local/bin/approvald"
        dummy.parent.mkdir(parents=True)
        dummy.write_text("#!/bin/sh\nexit 0\n")
        dummy.chmod(0o755)
        # Does verify work at all on this machine? A trivial, valid unit must pass cleanly.
        probe = tmp / "approvald-probe.service"
        probe.write_text(f"[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart={dummy}\n")
        try:
            rc, lines = run_verify([probe], env)
        except (OSError, subprocess.SubprocessError) as e:
            rc, lines = -1, [str(e)]
        noise = [ln for ln in lines if "approvald-probe" in ln and not NO_SYSTEMD.search(ln)]
        if rc != 0 or noise:
            note("systemd path: systemd-analyze verify does not work here "
                 f"(a valid probe unit gave rc={rc}: {' | '.join(lines)[:300]}); checked the unit "
                 "keys by parsing the files only")
            return
        units = []
        for name in (UNIT_SERVER, UNIT_MIGRATE):
            text = (SYSTEMD / name).read_text(encoding="utf-8")
            check(f"{name}: refers to /usr/local/bin/approvald", "/usr/local/bin/approvald" in text, "")
            (tmp / name).write_text(text.replace("/usr/local/bin/approvald", str(dummy)))
            units.append(tmp / name)
        rc, lines = run_verify(units, env)
        ours = [ln for ln in lines if any(n in ln for n in (UNIT_SERVER, UNIT_MIGRATE, str(tmp)))]
        bad = [ln for ln in ours if not NO_SYSTEMD.search(ln)]
        for ln in lines:
            if ln not in bad:
                note(f"systemd-analyze (ignored, not about the units' content): {ln}")
        version = subprocess.run([str(sa), "--version"], capture_output=True, text=True).stdout
        note(f"systemd path: systemd-analyze verify ({version.splitlines()[0] if version else '?'})"
             " on copies of the units, approvald replaced by a dummy executable")
        check("systemd-analyze verify: exit status 0", rc == 0, "\n".join(lines))
        check("systemd-analyze verify: no warnings about the units", not bad, "\n".join(bad))

        # The same with the commented TLS drop-in applied (a copy of the unit with the drop-in's
        # lines appended: `ExecStart=` resets the list there as in a drop-in).
        tls_dir = tmp / "tls"
        tls_dir.mkdir()
        tls_unit = tls_dir / UNIT_SERVER
        tls_unit.write_text((tmp / UNIT_SERVER).read_text(encoding="utf-8").split("[Install]")[0]
                            + tls_drop_in().replace("/usr/local/bin/approvald", str(dummy))
                            + "[Install]\nWantedBy=multi-user.target\n")
        rc, lines = run_verify([tls_unit], env)
        bad = [ln for ln in lines if (UNIT_SERVER in ln or str(tmp) in ln)
               and not NO_SYSTEMD.search(ln)]
        check("systemd-analyze verify: approvald.service with the TLS drop-in",
              rc == 0 and not bad, "\n".join(lines))

        # The offline exposure score (informational unless it can be computed).
        for name in (UNIT_SERVER, UNIT_MIGRATE):
            try:
                p = subprocess.run([str(sa), "security", "--offline=yes", "--no-pager",
                                    str(tmp / name)], capture_output=True, text=True, timeout=60,
                                   env=env)
            except (OSError, subprocess.SubprocessError) as e:
                note(f"systemd-analyze security {name}: not available ({e})")
                continue
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", p.stdout + p.stderr)
            if p.returncode != 0 or not m:
                note(f"systemd-analyze security {name}: not available here (rc={p.returncode})")
                continue
            note(f"systemd-analyze security {name}: exposure {m.group(1)} {m.group(2)}")
            check(f"{name}: systemd-analyze security exposure at most 2.0",
                  float(m.group(1)) <= 2.0, m.group(0))


# What deploy/README.md said before approvald had TLS.
STALE_NO_TLS = r"\*\*No TLS\.\*\*|Remember: no TLS|serves plaintext gRPC only|has no TLS|TODO\(tls\)"
# What it said before --health-listen, when the Kubernetes probes were tcpSocket.
STALE_PROBES = (r"tcpSocket|only check that the port|does \*\*not\*\* see health|"
                r"probes don't see it|single port, which serves TLS")


@section("TLS: documentation")
def tls_docs():
    left = [rel(f) for f in sorted(DEPLOY.rglob("*")) if f.is_file()
            and "TODO(tls)" in f.read_text(encoding="utf-8", errors="replace")]
    check("deploy/: no TODO(tls) left", not left, left)
    cf = (CONTAINER / "Containerfile").read_text(encoding="utf-8")
    check("Containerfile: says that serving needs --tls-cert/--tls-key or --allow-insecure",
          "--tls-cert" in cf and "--tls-key" in cf and "--allow-insecure" in cf, "")
    ep = containerfile_entrypoint()
    cmd = [a for w, a in containerfile_instructions(CONTAINER / "Containerfile") if w == "CMD"]
    try:
        cmd = [str(x) for x in json.loads(cmd[-1])] if cmd else []
    except json.JSONDecodeError:
        cmd = []
    if not (flag_value(cmd, "tls-cert") or flag_bool(cmd, "allow-insecure")):
        check("Containerfile: says that the default arguments alone are refused",
              "refusing plaintext" in cf, "the default CMD serves plaintext on "
              f"{flag_value(ep, 'listen')}: document it")
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needle in ("--allow-insecure", "--tls-cert", "--tls-client-ca", "--principal-from-cert",
                   TLS_SECRET, "--health-listen", f"{HEALTH_PORT}", "grpc_health_probe"):
        check(f"deploy/README.md: mentions {needle}", needle in readme, "")
    stale = [m.group(0) for m in re.finditer(".{0,60}(" + STALE_PROBES + ").{0,60}", readme, re.I)]
    check("deploy/README.md: no longer says that the probes are tcpSocket or only check the port",
          not stale, stale)
    raw = (K8S / "deployment.yaml").read_text(encoding="utf-8")
    stale = [m.group(0) for m in re.finditer(".{0,60}(" + STALE_PROBES + ").{0,60}", raw, re.I)]
    check("deployment.yaml: no comment says that the probes are tcpSocket or only check the port",
          not stale, stale)
    check("deploy/README.md: no longer says that approvald has no TLS",
          not re.search(STALE_NO_TLS, readme, re.I),
          [m.group(0) for m in re.finditer(".{0,40}(" + STALE_NO_TLS + ").{0,40}", readme, re.I)])


def main():
    for step in (k8s_files, k8s_deployment, k8s_service, k8s_pdb, k8s_job, k8s_config,
                 example_config, containerfile, compose, systemd_keys, systemd_analyze, tls_docs):
        step()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
