#!/usr/bin/python3
"""Renders every overlay of deploy/k8s and checks what a reviewer would, without a cluster.

usage: check_k8s.py REPO_ROOT WORK_DIR      (KUBECTL: the kubectl to render with)

For overlays/dev and overlays/prod:
- `kubectl kustomize` renders it (Debian 12's kubectl 1.20, kustomize 2.0, or a newer one);
- every object validates against the Kubernetes or cert-manager schema (kubernetes-models from
  npm, installed into WORK_DIR by `npm ci` from tests/deploy/schema's lock file);
- policy: every container has a tagged image (no :latest), CPU and memory requests and limits,
  runs as non-root with a read-only root filesystem, no privilege escalation, all capabilities
  dropped and none added, no host network/PID/IPC or hostPath; long-running containers have
  readiness and liveness probes; no Secret is inlined and no secret-looking variable has a
  literal value; every Service port leads to a TLS-only port; a default-deny NetworkPolicy
  exists and every Gantry pod is selected by a policy; the API server has 2+ replicas and a
  PodDisruptionBudget; controllers and workers sit on GPU nodes with the NVIDIA toleration,
  workers request nvidia.com/gpu and reach their node's controller through a node-local
  Service; certificates carry the SPIFFE IDs DESIGN.md names;
- every Secret the pods read is made by cert-manager's Certificates, deploy/k8s/create-secrets.sh
  or deploy/k8s/gantry-pki-secrets.sh (run here against a recording stand-in for kubectl).
Prints one line per check and "N passed, N failed".
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

root, work = sys.argv[1:3]
kubectl = os.environ.get("KUBECTL", "kubectl")
k8s = os.path.join(root, "deploy", "k8s")
passed, failed = 0, 0


def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    passed, failed = passed + (1 if ok else 0), failed + (0 if ok else 1)
    return ok


def render(overlay):
    out = subprocess.run([kubectl, "kustomize", os.path.join(k8s, "overlays", overlay)],
                         capture_output=True, text=True)
    if not check(out.returncode == 0, f"{overlay}: kubectl kustomize renders it"):
        print(out.stderr)
        return []
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def install_schemas():
    """npm ci into WORK_DIR from the committed lock file; returns NODE_PATH."""
    target = os.path.join(work, "k8s-schema")
    marker = os.path.join(target, "package-lock.json")
    lock = os.path.join(root, "tests", "deploy", "schema", "package-lock.json")
    if not (os.path.exists(marker) and open(marker).read() == open(lock).read()):
        os.makedirs(target, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(root, "tests", "deploy", "schema", name), target)
        out = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr)
            return None
    return os.path.join(target, "node_modules")


def validate_schemas(overlay, objects, node_path):
    out = subprocess.run(["node", os.path.join(root, "tests", "deploy", "schema", "validate.js")],
                         input=json.dumps(objects), capture_output=True, text=True,
                         env=dict(os.environ, NODE_PATH=node_path))
    bad = [line for line in out.stdout.splitlines() if line.startswith("FAIL")]
    for line in bad:
        print("     " + line)
    check(out.returncode == 0 and not bad and "0 failed" in out.stdout,
          f"{overlay}: all {len(objects)} objects match their schemas")


def pod_specs(objects):
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job"):
            yield o, spec["template"]["spec"], spec["template"]["metadata"].get("labels", {})


SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|ADMIN_KEY|_KEY$|DATABASE_URL)")


def check_pods(overlay, objects):
    for o, pod, _ in pod_specs(objects):
        name = f"{overlay}: {o['kind']} {o['metadata']['name']}"
        psc = pod.get("securityContext", {})
        check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"),
              f"{name}: no host network, PID or IPC namespace")
        check(all("hostPath" not in v for v in pod.get("volumes", [])), f"{name}: no hostPath volume")
        check(pod.get("automountServiceAccountToken") is False, f"{name}: no Kubernetes API token mounted")
        for c in pod.get("initContainers", []) + pod["containers"]:
            cname = f"{name} container {c['name']}"
            image = c["image"]
            tag = image.rsplit("/", 1)[-1]
            check(("@sha256:" in image or ":" in tag) and not tag.endswith(":latest"),
                  f"{cname}: image {image} pinned by tag")
            res = c.get("resources", {})
            check(all(k in res.get(kind, {}) for kind in ("requests", "limits") for k in ("cpu", "memory")),
                  f"{cname}: CPU and memory requests and limits")
            sc = c.get("securityContext", {})
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True and \
                sc.get("runAsUser", psc.get("runAsUser", 1)) != 0
            caps = sc.get("capabilities", {})
            # The one stated exception: the worker runs as root with exactly the capabilities
            # that giving sessions and handlers uids of their own takes, and must give them.
            if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "gantry-worker" and c["name"] == "worker":
                env = {e["name"]: e.get("value") for e in c.get("env", [])}
                check(sc.get("runAsUser") == 0 and "ALL" in caps.get("drop", [])
                      and sorted(caps.get("add", [])) == ["CHOWN", "KILL", "SETGID", "SETUID"],
                      f"{cname}: root with CHOWN, KILL, SETGID and SETUID only")
                check(bool(env.get("GANTRY_SESSION_UIDS")) and bool(env.get("GANTRY_HANDLER_USER"))
                      and "GANTRY_SESSIONS_AS_WORKER_USER" not in env,
                      f"{cname}: sessions and handlers get uids of their own")
            else:
                check(non_root, f"{cname}: runs as non-root")
                check("ALL" in caps.get("drop", []) and not caps.get("add"), f"{cname}: all capabilities dropped")
            check(sc.get("readOnlyRootFilesystem") is True, f"{cname}: read-only root filesystem")
            check(sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged"),
                  f"{cname}: no privilege escalation")
            check((sc.get("seccompProfile") or psc.get("seccompProfile", {})).get("type") == "RuntimeDefault",
                  f"{cname}: RuntimeDefault seccomp profile")
            if c in pod["containers"] and o["kind"] != "Job":
                check("readinessProbe" in c and "livenessProbe" in c, f"{cname}: readiness and liveness probes")
            for env in c.get("env", []):
                if SECRET_NAME.search(env["name"]) and "value" in env:
                    literal_ok = env["value"].startswith("/") or (
                        env["name"] == "GANTRY_DATABASE_URL" and "password" not in env["value"].lower())
                    check(literal_ok, f"{cname}: {env['name']} is not a literal secret")


def container_ports(objects):
    ports = {}
    for o, pod, labels in pod_specs(objects):
        for c in pod["containers"]:
            for p in c.get("ports", []):
                ports[(tuple(sorted(labels.items())), p.get("name"))] = (o, c, p)
    return ports


def check_services(overlay, objects):
    ports = container_ports(objects)
    for svc in (o for o in objects if o["kind"] == "Service"):
        selector = tuple(sorted(svc["spec"]["selector"].items()))
        for p in svc["spec"]["ports"]:
            found = [v for (labels, name), v in ports.items()
                     if set(selector) <= set(labels) and name == p.get("targetPort")]
            what = f"{overlay}: Service {svc['metadata']['name']} port {p['port']}"
            if not check(len(found) == 1, f"{what} targets a named container port"):
                continue
            _, container, _ = found[0]
            args = " ".join(container.get("args", []))
            # Gantry's binaries have no plaintext mode; PostgreSQL must be told ssl=on.
            tls = container["image"].split("/")[-1].startswith("gantry-") or "ssl=on" in args
            check(tls and "tls" in p.get("name", ""), f"{what} is TLS only (and named so)")


def check_network_policies(overlay, objects):
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    check(any(p["spec"]["podSelector"] == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
              and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies),
          f"{overlay}: a default-deny NetworkPolicy for ingress and egress")
    for o, _, labels in pod_specs(objects):
        selected = [p for p in policies if p["spec"]["podSelector"]
                    and set(p["spec"]["podSelector"].get("matchLabels", {}).items()) <= set(labels.items())
                    and "Egress" in p["spec"].get("policyTypes", [])]
        check(bool(selected), f"{overlay}: {o['kind']} {o['metadata']['name']} has its own egress policy")


def find(objects, kind, name):
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def check_front_door(overlay, objects, api):
    """The inference front door (docs/openai.md): served, exposed, let in, and probed."""
    container = next(c for c in api["spec"]["template"]["spec"]["containers"] if c["name"] == "api")
    listen = next((e.get("value", "") for e in container.get("env", []) if e["name"] == "GANTRY_HTTP_LISTEN"), "")
    port = next((p["containerPort"] for p in container.get("ports", []) if p["name"] == "https"), None)
    check(port is not None and listen.endswith(f":{port}"),
          f"{overlay}: gantry-api serves the front door on its named https port")
    svc = find(objects, "Service", "gantry-api")
    check(any(p.get("targetPort") == "https" for p in (svc or {}).get("spec", {}).get("ports", [])),
          f"{overlay}: the gantry-api Service exposes the front door")
    policy = find(objects, "NetworkPolicy", "gantry-api")
    check(any({"protocol": "TCP", "port": port} in rule.get("ports", [])
              for rule in (policy or {}).get("spec", {}).get("ingress", [])),
          f"{overlay}: the gantry-api NetworkPolicy lets clients reach the front door")
    probe = container.get("readinessProbe", {}).get("httpGet", {})
    check(probe.get("port") == "https" and probe.get("path") == "/health" and probe.get("scheme") == "HTTPS",
          f"{overlay}: gantry-api is ready only while its front door answers /health")


def check_topology(overlay, objects):
    ns = find(objects, "Namespace", "gantry")
    labels = (ns or {}).get("metadata", {}).get("labels", {})
    check(labels.get("pod-security.kubernetes.io/enforce") == "baseline"
          and labels.get("pod-security.kubernetes.io/warn") == "restricted"
          and labels.get("pod-security.kubernetes.io/audit") == "restricted",
          f"{overlay}: the namespace enforces baseline (the worker) and warns and audits beyond restricted")
    api = find(objects, "Deployment", "gantry-api")
    check(api is not None and api["spec"]["replicas"] >= 2, f"{overlay}: gantry-api runs 2+ replicas")
    pdb = find(objects, "PodDisruptionBudget", "gantry-api")
    check(pdb is not None and pdb["spec"]["selector"]["matchLabels"] ==
          api["spec"]["selector"]["matchLabels"], f"{overlay}: a PodDisruptionBudget covers gantry-api")
    init = api["spec"]["template"]["spec"].get("initContainers", [])
    check(any("--migrate-only" in c.get("args", []) for c in init), f"{overlay}: migrations run before the API serves")
    for c in init + api["spec"]["template"]["spec"]["containers"]:
        check(any(e["name"] == "GANTRY_DATABASE_URL" for e in c.get("env", [])),
              f"{overlay}: gantry-api container {c['name']} is given its database")
    check_front_door(overlay, objects, api)
    for name in ("gantry-controller", "gantry-worker"):
        ds = find(objects, "DaemonSet", name)
        pod = ds["spec"]["template"]["spec"]
        check(pod.get("nodeSelector", {}).get("nvidia.com/gpu.present") == "true"
              and any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])),
              f"{overlay}: {name} runs on GPU nodes and tolerates their taint")
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        check(env.get("GANTRY_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
              f"{overlay}: {name} is named after its node")
        check("GANTRY_TLS_BOOTSTRAP_DIR" in env and "GANTRY_TLS_CERT" not in env,
              f"{overlay}: {name} bootstraps its certificate")
        # Its role's join token only, as a file: never in the environment, and never the
        # controllers' token in a worker pod, where tenants' sessions run.
        own = "gantry-join-token" if name == "gantry-controller" else "gantry-worker-join-token"
        secrets = {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        check("GANTRY_JOIN_TOKEN" not in env and "GANTRY_JOIN_TOKEN_FILE" in env
              and own in secrets and ({"gantry-join-token", "gantry-worker-join-token"} - {own}).isdisjoint(secrets),
              f"{overlay}: {name} reads its own role's join token ({own}) from a file, and no other")
    worker = find(objects, "DaemonSet", "gantry-worker")["spec"]["template"]["spec"]["containers"][0]
    check("nvidia.com/gpu" in worker["resources"]["limits"], f"{overlay}: workers request nvidia.com/gpu")
    url = next(e["value"] for e in worker["env"] if e["name"] == "CONTROLLER_URL")
    svc = find(objects, "Service", url.split(":")[0])
    check(svc is not None and svc["spec"].get("internalTrafficPolicy") == "Local",
          f"{overlay}: workers reach their own node's controller ({url}, a node-local Service)")
    api_env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    check(url.split(":")[0] in (api_env.get("GANTRY_NODE_CERT_DNS") or "").split(","),
          f"{overlay}: the API server may put {url.split(':')[0]} in controllers' certificates")


def check_certificates(overlay, objects):
    certs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Certificate"}
    check(certs.get("gantry-api-tls", {}).get("spec", {}).get("uris") == ["spiffe://gantry/api-server"],
          f"{overlay}: the API server's certificate is spiffe://gantry/api-server")
    check("gantry-api" in certs.get("gantry-api-tls", {}).get("spec", {}).get("dnsNames", []),
          f"{overlay}: ... and names the gantry-api Service")
    check(not certs.get("gantry-node-trust", {}).get("spec", {}).get("uris"),
          f"{overlay}: the node trust certificate carries no Gantry identity")
    check(all(u.startswith("spiffe://gantry/") for c in certs.values() for u in c["spec"].get("uris", [])),
          f"{overlay}: every SPIFFE ID is in the spiffe://gantry/ domain")


def secrets_from_scripts():
    """Names and keys of the Secrets the two scripts create, seen by a recording kubectl."""
    made = {}
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "kubectl")
        log = os.path.join(tmp, "calls")
        with open(fake, "w") as f:
            # Nothing exists yet ("get" fails); "apply -f -" reads its input as the real one does.
            f.write(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\ncase "$*" in *" get "*) exit 1;; esac\n'
                    'case "$*" in "apply -f -") cat > /dev/null;; *--dry-run*) echo "kind: Secret";; esac\nexit 0\n')
        os.chmod(fake, 0o755)
        env = dict(os.environ, PATH=f"{tmp}:{os.environ['PATH']}",
                   GANTRY_PKI=os.path.join(work, "tools", "gantry-pki"))
        for cmd in ([os.path.join(k8s, "create-secrets.sh"), "--database-url", "host=db sslmode=verify-full"],
                    [os.path.join(k8s, "gantry-pki-secrets.sh"), os.path.join(tmp, "pki")]):
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            check(out.returncode == 0, f"{os.path.basename(cmd[0])} runs (against a recording kubectl)")
            if out.returncode:
                print(out.stdout, out.stderr)
        for line in open(log).read().splitlines():
            m = re.search(r"create secret generic (\S+) (.*)", line)
            if m:
                keys = re.findall(r"--from-file=([^=\s]+)=", m.group(2))
                made[m.group(1)] = set(keys)
    return made


def check_secrets(overlay, objects, scripted):
    check(not any(o["kind"] == "Secret" for o in objects), f"{overlay}: no Secret is inlined")
    issued = {c["spec"]["secretName"]: {"tls.crt", "tls.key", "ca.crt"}
              for c in objects if c["kind"] == "Certificate"}
    for _, pod, _ in pod_specs(objects):
        wanted = {}
        for v in pod.get("volumes", []):
            if "secret" in v:
                keys = {i["key"] for i in v["secret"].get("items", [])}
                wanted.setdefault(v["secret"]["secretName"], set()).update(keys)
        for c in pod.get("initContainers", []) + pod["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    wanted.setdefault(ref["name"], set()).add(ref["key"])
        for name, keys in wanted.items():
            by_cert = keys <= issued.get(name, set())
            by_script = name in scripted and keys <= scripted[name]
            check(by_cert or by_script, f"{overlay}: Secret {name} {sorted(keys)} is made by cert-manager or a script")


scripted = secrets_from_scripts()
node_path = install_schemas()
check(node_path is not None, "npm ci installed kubernetes-models")
for overlay in ("dev", "prod"):
    objects = render(overlay)
    if not objects:
        continue
    if node_path:
        validate_schemas(overlay, objects, node_path)
    check_pods(overlay, objects)
    check_services(overlay, objects)
    check_network_policies(overlay, objects)
    check_topology(overlay, objects)
    check_certificates(overlay, objects)
    check_secrets(overlay, objects, scripted)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
