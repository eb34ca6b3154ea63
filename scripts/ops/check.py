#!/usr/bin/env python3
"""Offline checks of the operations files (run by scripts/test-ops, which sets up the venv).

1. Every overlay renders (kustomize) and every object validates against the Kubernetes
   schemas bundled by kubernetes-validate (strict: unknown fields fail); CRD objects (KEDA,
   CloudNativePG, Prometheus Operator) validate against the schemas in k8s/schemas/.
2. The rendered workloads keep the promises in k8s/README.md: non-root, read-only root
   filesystem, all capabilities dropped, requests and memory limits, probes on /readyz and
   /healthz, preStop within the grace period, secrets only by reference, no Secret objects.
3. Every dashboard parses, has unique panel ids and a `datasource` variable that every panel
   and target uses (no hard-coded datasource uid).
4. Every metric name in the dashboards' and alerts' PromQL is exported by a running proctor
   (scraped after simulated learners ran; histogram suffixes handled).
5. docker-compose.yml parses and references files that exist; the Dockerfile is multi-stage,
   ends as a non-root user and never ADDs a URL.

Usage: check.py --proctor target/debug/proctor --kustomize "kubectl kustomize" --port 41xxx
"""

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ["dev", "production"]
K8S_VERSION = "1.32.0"
CRD_GROUPS = {"keda.sh", "postgresql.cnpg.io", "monitoring.coreos.com"}

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"FAIL: {msg}", file=sys.stderr)


def render(kustomize: str, overlay: str) -> list[dict]:
    out = subprocess.run(
        shlex.split(kustomize) + [str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def crd_schema(doc: dict) -> dict | None:
    group, _, version = doc["apiVersion"].partition("/")
    if group not in CRD_GROUPS:
        return None
    path = K8S / "schemas" / f"{group}_{version}_{doc['kind']}.json"
    if not path.exists():
        fail(f"no schema {path.relative_to(ROOT)} for {doc['apiVersion']} {doc['kind']}")
        return {}
    return json.loads(path.read_text())


def validate_objects(overlay: str, docs: list[dict]) -> None:
    for d in docs:
        name = f"{overlay}: {d.get('kind')}/{d.get('metadata', {}).get('name')}"
        schema = crd_schema(d)
        if schema is not None:
            if schema:
                errs = list(jsonschema.Draft202012Validator(schema).iter_errors(d))
                for e in errs:
                    fail(f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
            continue
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{name}: {'/'.join(map(str, e.path))}: {e.message}")
        except Exception as e:  # an unknown kind/version is a failure too
            fail(f"{name}: {e}")


SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$|_URI$", re.I)


def pod_specs(docs: list[dict]):
    for d in docs:
        kind = d["kind"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            yield d, d["spec"]["template"]["spec"]


def check_workloads(overlay: str, docs: list[dict]) -> None:
    kinds = {d["kind"] for d in docs}
    for need in (
        "Deployment",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "Cluster",
        "Job",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "StatefulSet",
        "ConfigMap",
    ):
        if need not in kinds:
            fail(f"{overlay}: no {need} rendered")
    if "Secret" in kinds:
        fail(f"{overlay}: a Secret is rendered; secrets are created out of band, never inlined")
    for d, spec in pod_specs(docs):
        where = f"{overlay}: {d['kind']}/{d['metadata']['name']}"
        psc = spec.get("securityContext", {})
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            cw = f"{where}/{c['name']}"
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                fail(f"{cw}: not runAsNonRoot")
            if (sc.get("runAsUser", psc.get("runAsUser", 0))) == 0:
                fail(f"{cw}: runs as uid 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(f"{cw}: root filesystem is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(f"{cw}: privilege escalation allowed")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{cw}: capabilities not dropped")
            res = c.get("resources", {})
            if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory"):
                fail(f"{cw}: no cpu/memory requests")
            if not res.get("limits", {}).get("memory"):
                fail(f"{cw}: no memory limit")
            for e in c.get("env", []):
                if "value" in e and SECRETISH.search(e["name"]):
                    fail(f"{cw}: env {e['name']} has an inline value; use secretKeyRef")
                if "value" in e and re.search(r"://[^:/@]*:[^$@/][^@]*@", str(e["value"])):
                    fail(f"{cw}: env {e['name']} inlines a credential")
        if d["metadata"]["name"].startswith("proctor-") and d["kind"] == "Deployment":
            c = spec["containers"][0]
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                fail(f"{where}: readiness probe is not /readyz")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                fail(f"{where}: liveness probe is not /healthz (no dependency checks)")
            if "startupProbe" not in c:
                fail(f"{where}: no startup probe")
            grace = spec.get("terminationGracePeriodSeconds", 30)
            pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            pre_s = int(pre[-1]) if pre and pre[-1].isdigit() else 0
            # The server's drain: 10 s HTTP shutdown + 5 s for sockets (server/src/startup.rs).
            if grace < pre_s + 15 + 5:
                fail(f"{where}: grace {grace}s < preStop {pre_s}s + drain 15s + margin")
            if "gateway" in d["metadata"]["name"] and pre_s == 0:
                fail(f"{where}: gateway without a preStop wait")
            env = {e["name"]: e for e in c.get("env", [])}
            url = env.get("PROCTOR_REDIS_URL", {}).get("value", "")
            want = "redis+cluster://" if overlay == "production" else "redis://"
            if not url.startswith(want):
                fail(f"{where}: PROCTOR_REDIS_URL {url!r} should start with {want}")
            if "worker" in d["metadata"]["name"]:
                addr = env.get("PROCTOR_REDIS_ADDRESS", {}).get("value", "")
                if not addr or "://" in addr or (overlay == "production") != ("," in addr):
                    fail(f"{where}: PROCTOR_REDIS_ADDRESS {addr!r} (KEDA's address) is wrong for {overlay}")
            if "valueFrom" not in env.get("PROCTOR_DATABASE_URL", {}):
                fail(f"{where}: PROCTOR_DATABASE_URL must come from a Secret")
    for d in docs:
        if d["kind"] == "ScaledObject":
            for t in d["spec"]["triggers"]:
                m = t["metadata"]
                want = "redis-cluster-streams" if overlay == "production" else "redis-streams"
                if t["type"] != want:
                    fail(f"{overlay}: ScaledObject trigger {t.get('name')} is {t['type']}, want {want}")
                if "lagCount" not in m or m.get("consumerGroup") != "workers":
                    fail(f"{overlay}: ScaledObject trigger {t.get('name')} must scale on lagCount of group workers")
            cm = next(x for x in docs if x["kind"] == "ConfigMap" and x["metadata"]["name"] == "proctor-config")
            parts = int(cm["data"]["PROCTOR_PARTITIONS"])
            streams = {t["metadata"]["stream"] for t in d["spec"]["triggers"]}
            if streams != {f"proctor:{{p{p}}}:events" for p in range(parts)}:
                fail(f"{overlay}: ScaledObject triggers {sorted(streams)} do not match {parts} partitions")
            if d["spec"]["maxReplicaCount"] > parts:
                fail(f"{overlay}: more workers than partitions")
        if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            if len(d["data"]) != 3:
                fail(f"{overlay}: the dashboards ConfigMap holds {len(d['data'])} dashboards")


def dashboards() -> list[tuple[str, dict]]:
    out = []
    for p in sorted((K8S / "base" / "dashboards").glob("*.json")):
        try:
            out.append((p.name, json.loads(p.read_text())))
        except json.JSONDecodeError as e:
            fail(f"{p.name}: not JSON: {e}")
    if len(out) != 3:
        fail(f"expected 3 dashboards, found {len(out)}")
    return out


def check_dashboards(dash: list[tuple[str, dict]]) -> list[str]:
    exprs = []
    for name, d in dash:
        vars_ = d.get("templating", {}).get("list", [])
        if not any(v.get("type") == "datasource" and v.get("name") == "datasource" for v in vars_):
            fail(f"{name}: no `datasource` template variable")
        ids = [p.get("id") for p in d.get("panels", [])]
        if len(ids) != len(set(ids)) or None in ids:
            fail(f"{name}: panel ids are missing or not unique: {ids}")
        if not d.get("uid") or not d.get("title"):
            fail(f"{name}: no uid/title")
        for p in d.get("panels", []):
            for obj in [p] + p.get("targets", []):
                ds = obj.get("datasource")
                if ds is not None and (not isinstance(ds, dict) or ds.get("uid") != "${datasource}"):
                    fail(f"{name}: panel {p.get('id')} hard-codes a datasource: {ds}")
            if not p.get("targets"):
                fail(f"{name}: panel {p.get('id')} has no query")
            exprs += [t["expr"] for t in p.get("targets", [])]
    return exprs


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((K8S / "base/alerts/proctor.rules.yml").read_text())
    out = []
    for g in rules["groups"]:
        for r in g["rules"]:
            out.append(r["expr"])
            if "alert" in r and not r.get("annotations", {}).get("runbook_url"):
                fail(f"alert {r['alert']}: no runbook_url")
    readme = (K8S / "README.md").read_text().lower()
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r and f"#### {r['alert'].lower()}" not in readme:
                fail(f"alert {r['alert']}: no runbook section '#### {r['alert']}' in k8s/README.md")
    return out


PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def scrape_running_proctor(proctor: str, port: int) -> set[str]:
    """Starts proctor (embedded store and bus, stand-in face), runs simulated learners
    against it, scrapes /metrics and returns every sample name."""
    with tempfile.TemporaryDirectory() as data, open(f"{data}.log", "w+") as log:
        env = dict(os.environ)
        for k in ("PROCTOR_DATABASE_URL", "PROCTOR_REDIS_URL"):
            env.pop(k, None)
        serve = subprocess.Popen(
            [proctor, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
             "--time-scale", "60", "--face", "stand-in", "--partitions", "2"],
            env=env,
            stdout=log,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/readyz", timeout=2)
                    break
                except OSError:
                    if serve.poll() is not None:
                        raise SystemExit(f"proctor serve exited with {serve.returncode}")
                    time.sleep(0.2)
            else:
                raise SystemExit("proctor serve did not become ready")
            sim = [proctor, "simulate", "--server", base, "--credentials",
                   f"{data}/demo-credentials.json"]
            for s in ("honest", "missed_popup", "face_fail_then_pass", "hidden_tab"):
                sim += ["--only", s]
            subprocess.run(sim, check=True, env=env, stdout=subprocess.DEVNULL)
            text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        except BaseException:
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
            raise
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=60)
            os.unlink(log.name)
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def check_compose() -> None:
    path = ROOT / "docker-compose.yml"
    c = yaml.safe_load(path.read_text())
    services = c.get("services", {})
    for need in ("gateway", "worker", "postgres", "redis", "prometheus", "grafana"):
        if need not in services:
            fail(f"docker-compose.yml: no service {need}")
    for name, s in services.items():
        build = s.get("build")
        if isinstance(build, dict):
            ctx = ROOT / build.get("context", ".")
            if not (ctx / build.get("dockerfile", "Dockerfile")).exists():
                fail(f"docker-compose.yml: {name}: Dockerfile missing")
        for v in s.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("."):
                if not (ROOT / src).exists():
                    fail(f"docker-compose.yml: {name}: {src} does not exist")
        for dep in s.get("depends_on", {}):
            if dep not in services:
                fail(f"docker-compose.yml: {name} depends on unknown {dep}")
    # Prometheus in compose scrapes both proctor roles and loads the same alert rules.
    prom = yaml.safe_load((ROOT / "ops/prometheus.yml").read_text())
    targets = json.dumps(prom.get("scrape_configs", []))
    for t in ("gateway:8080", "worker:8080"):
        if t not in targets:
            fail(f"ops/prometheus.yml does not scrape {t}")


def check_dockerfile() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / "Dockerfile").read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    if len(froms) < 2:
        fail("Dockerfile: not multi-stage")
    users = [ln.split(None, 1)[1] for ln in lines if ln.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail("Dockerfile: the final stage must run as a non-root USER")
    for ln in lines:
        if ln.upper().startswith("ADD ") and re.search(r"https?://", ln):
            fail(f"Dockerfile: ADD of a URL: {ln}")
        if re.match(r"FROM\s+\S+:latest", ln, re.I) or re.match(r"FROM\s+[^:\s]+(\s|$)", ln, re.I) and " AS " not in ln.upper():
            fail(f"Dockerfile: unpinned base image: {ln}")
    text = "\n".join(lines)
    for need in ("models/setup.sh", "libonnxruntime", "HEALTHCHECK", "--locked"):
        if need not in text:
            fail(f"Dockerfile: expected {need!r}")


def self_test() -> None:
    """The PromQL name extraction must find metrics and nothing else."""
    got = metric_names(
        'histogram_quantile(0.99, sum by (le, route) (rate(a_seconds_bucket{route!="/x/{id}",s=~"5.."}[5m])))'
        " / clamp_min(sum(rate(b_total[5m] offset 1h)), 1e-9) > 3 * on (rule) group_left c"
        ' and max_over_time(d:rec[10m:1m]) or vector(0) unless absent(e{x="y"})'
    )
    want = {"a_seconds_bucket", "b_total", "c", "d:rec", "e"}
    if got != want:
        raise SystemExit(f"check.py self-test: metric_names found {sorted(got)}, want {sorted(want)}")


def main() -> None:
    self_test()
    ap = argparse.ArgumentParser()
    ap.add_argument("--proctor", required=True)
    ap.add_argument("--kustomize", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()

    for overlay in OVERLAYS:
        docs = render(args.kustomize, overlay)
        print(f"{overlay}: {len(docs)} objects rendered")
        validate_objects(overlay, docs)
        check_workloads(overlay, docs)

    exprs = check_dashboards(dashboards()) + alert_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    print(f"PromQL uses {len(used)} metric names in {len(exprs)} expressions")
    exported = scrape_running_proctor(args.proctor, args.port)
    for name in sorted(used):
        if name not in exported:
            fail(f"PromQL uses {name}, which a running proctor does not export")
    if not any(n.startswith("proctor_") for n in exported):
        fail("the scrape shows no proctor_ metric")

    check_compose()
    check_dockerfile()

    if failures:
        print(f"\n{len(failures)} operations check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("operations checks passed")


if __name__ == "__main__":
    main()
