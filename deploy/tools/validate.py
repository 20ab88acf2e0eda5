#!/usr/bin/env python3
"""Checks the rendered manifests, the Prometheus rules and the Kibana saved objects.

Run by scripts/validate-deploy (which renders the kustomizations and provides a venv with
kubernetes-validate and promql-parser); not meant to be called on its own:

    validate.py --repo ROOT --k8s-version 1.30.0 RENDERED.yaml...

Checks, each printed as it runs; any failure makes the exit status 1:

* core kinds: kubernetes-validate's strict JSON Schemas of the pinned Kubernetes version;
* custom resources (no schema available offline): KafkaTopic, PrometheusRule and
  ServiceMonitor get hand-written structural checks; PromQL is parsed, and every `sluice_*`
  metric a rule uses must be exported somewhere in the Rust sources; any other custom kind
  is an error, so nothing slips through unchecked;
* consistency inside each render: Services, PodDisruptionBudgets and the ServiceMonitor select
  pods that exist, named ports resolve, referenced ConfigMaps / ServiceAccounts /
  PriorityClasses exist, every container is locked down (read-only root, no capabilities, no
  privilege escalation, RuntimeDefault seccomp, requests and limits), and each role's
  sluice.toml parses and agrees with the pod that mounts it (port, token file, data dir, pods
  dir);
* Kibana: every NDJSON line parses, references resolve, the file is what generate.py writes,
  and every field it names exists in schemas/json/log_event.v1.schema.json with an index kind
  (schemas/src/fields.rs) that suits its use.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import promql_parser
import yaml

# API groups whose kinds kubernetes-validate has schemas for; anything else is a custom
# resource and needs its own check below.
CORE_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "networking.k8s.io",
    "storage.k8s.io",
    "autoscaling",
    "coordination.k8s.io",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
API_PORT = 7280
SEVERITIES = {"critical", "warning", "info"}
# Topic-level configs the KafkaTopics may set (Kafka's documented topic configs we use).
KAFKA_TOPIC_CONFIGS = {
    "retention.ms",
    "retention.bytes",
    "min.insync.replicas",
    "cleanup.policy",
    "compression.type",
    "max.message.bytes",
    "segment.ms",
    "segment.bytes",
}
KAFKA_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# Lens operations and the field index kinds (schemas/src/fields.rs) they can aggregate.
AGGREGATABLE = {"Keyword", "Long", "Ip", "Date"}
NUMERIC_OPS = {"percentile", "average", "sum", "min", "max", "median", "standard_deviation"}
BUCKET_OPS = {"terms", "unique_count", "last_value"}
LENS_RECORDS = "___records___"


class Report:
    """Counts checks; prints failures always and passes only when verbose."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.errors = 0
        self.checks = 0
        self.section = (0, 0)

    def ok(self, what):
        self.checks += 1
        if self.verbose:
            print(f"  ok    {what}")

    def fail(self, what):
        self.checks += 1
        self.errors += 1
        print(f"  FAIL  {what}")

    def begin(self, title):
        print(f"== {title}")
        self.section = (self.checks, self.errors)

    def end(self):
        checks, errors = self.checks - self.section[0], self.errors - self.section[1]
        print(f"   {checks} checks, {errors} failed")

    def check(self, cond, what):
        (self.ok if cond else self.fail)(what)
        return cond


# ---- sources of truth in the repository ---------------------------------------------------


def schema_fields(schema_path):
    """Every dotted path the LogEvent JSON Schema defines, objects included."""
    schema = json.loads(schema_path.read_text())
    defs = schema.get("$defs", {})
    paths = set()

    def resolve(node):
        if "$ref" in node:
            return defs[node["$ref"].rsplit("/", 1)[1]]
        for alt in node.get("anyOf", []) + node.get("oneOf", []):
            if "$ref" in alt:
                return defs[alt["$ref"].rsplit("/", 1)[1]]
        return node

    def walk(node, prefix):
        node = resolve(node)
        for name, child in node.get("properties", {}).items():
            path = f"{prefix}{name}"
            paths.add(path)
            walk(child, f"{path}.")

    walk(schema, "")
    return paths


def field_kinds(fields_rs):
    """Index kind of each field, from the FIELDS table in schemas/src/fields.rs."""
    text = fields_rs.read_text()
    consts = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    return {
        consts[c]: kind
        for c, kind in re.findall(r"f\((\w+), FieldKind::(\w+)\)", text)
        if c in consts
    }


def exported_metrics(repo):
    """Metric names the Rust sources can emit on /metrics.

    Literal names (`"sluice_es_docs_created_total"`) are taken as they are. Names built from a
    prefix (`"sluice_detect_{name}"`, the `sluice_ingest_{}` stats macro) are expanded with the
    string literals of the same file and the macro's `counter`/`gauge` declarations (counters
    get `_total`). A superset, but a misspelt or never-exported name is still caught.
    """
    names = set()
    skip = {"target", "targets", ".git", "deploy", "node_modules"}
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in skip]
        for f in files:
            if not f.endswith(".rs"):
                continue
            text = Path(root, f).read_text(errors="replace")
            names.update(re.findall(r"\bsluice_[a-z0-9_]*[a-z0-9]\b", text))
            for prefix in set(re.findall(r"\b(sluice_[a-z0-9_]+_)\{", text)):
                for lit in re.findall(r'"([a-z][a-z0-9_]*)"', text):
                    names.add(prefix + lit)
                for kind, name in re.findall(
                    r"^\s*(counter|gauge)\s+([a-z0-9_]+)\s*,", text, re.MULTILINE
                ):
                    names.add(prefix + name + ("_total" if kind == "counter" else ""))
    return names


# ---- Kubernetes manifests -----------------------------------------------------------------


def api_group(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def pod_spec(doc):
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec.get("template", {}).get("spec", {})


def pod_labels(doc):
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def validate_core(doc, version, rep, where):
    try:
        kubernetes_validate.validate(doc, version, strict=True)
        rep.ok(f"{where}: schema (Kubernetes {version}, strict)")
    except kv_utils.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        rep.fail(f"{where}: {path}: {err.message}")
    except kv_utils.SchemaNotFoundError as err:
        rep.fail(f"{where}: {err.message}")


def check_kafka_topic(doc, rep, where):
    spec = doc.get("spec", {})
    meta = doc.get("metadata", {})
    name = spec.get("topicName", meta.get("name", ""))
    problems = []
    if doc["apiVersion"] != "kafka.strimzi.io/v1beta2":
        problems.append(f"apiVersion {doc['apiVersion']} is not kafka.strimzi.io/v1beta2")
    if not KAFKA_TOPIC_NAME.match(name):
        problems.append(f"invalid topic name {name!r}")
    if not meta.get("labels", {}).get("strimzi.io/cluster"):
        problems.append("missing label strimzi.io/cluster (the topic operator ignores it)")
    if not meta.get("namespace"):
        problems.append("no namespace: it must be the one the topic operator watches")
    partitions, replicas = spec.get("partitions"), spec.get("replicas")
    for key, value in (("partitions", partitions), ("replicas", replicas)):
        if not isinstance(value, int) or value < 1:
            problems.append(f"spec.{key} must be a positive integer, got {value!r}")
    config = spec.get("config", {})
    for key, value in config.items():
        if key not in KAFKA_TOPIC_CONFIGS:
            problems.append(f"unknown topic config {key}")
    retention = config.get("retention.ms")
    if not isinstance(retention, int) or retention < 60_000:
        problems.append(f"config retention.ms must be an integer >= 60000, got {retention!r}")
    isr = config.get("min.insync.replicas")
    if isinstance(isr, int) and isinstance(replicas, int) and isr > replicas:
        problems.append(f"min.insync.replicas {isr} > replicas {replicas}: no write succeeds")
    unexpected = set(spec) - {"topicName", "partitions", "replicas", "config"}
    if unexpected:
        problems.append(f"unknown spec fields {sorted(unexpected)}")
    rep.check(
        not problems,
        f"{where}: KafkaTopic {name} "
        + (
            "; ".join(problems)
            or f"({partitions} partitions, {replicas} replicas, retention {retention} ms)"
        ),
    )
    return name


def promql_metric_names(expr):
    names = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(expr, visit, None)
    return names


def check_prometheus_rule(doc, rep, where, metrics):
    groups = doc.get("spec", {}).get("groups", [])
    rep.check(bool(groups), f"{where}: has rule groups")
    seen_groups, seen_alerts, used = set(), set(), set()
    for group in groups:
        gname = group.get("name")
        rep.check(gname and gname not in seen_groups, f"{where}: group {gname} named, unique")
        seen_groups.add(gname)
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            what = f"{where}: {gname}/{name}"
            problems = []
            if ("alert" in rule) == ("record" in rule):
                problems.append("needs exactly one of alert/record")
            unexpected = set(rule) - {
                "alert",
                "record",
                "expr",
                "for",
                "keep_firing_for",
                "labels",
                "annotations",
            }
            if unexpected:
                problems.append(f"unknown keys {sorted(unexpected)}")
            if "alert" in rule:
                if name in seen_alerts:
                    problems.append("duplicate alert name")
                seen_alerts.add(name)
                if rule.get("labels", {}).get("severity") not in SEVERITIES:
                    problems.append(f"labels.severity must be one of {sorted(SEVERITIES)}")
                if not rule.get("annotations", {}).get("summary"):
                    problems.append("annotations.summary missing")
            if "for" in rule and not PROM_DURATION.match(str(rule["for"])):
                problems.append(f"for: {rule['for']!r} is not a Prometheus duration")
            try:
                expr = promql_parser.parse(str(rule.get("expr", "")))
                names = promql_metric_names(expr)
                sluice = {n for n in names if n.startswith("sluice_")}
                used |= sluice
                missing = sorted(sluice - metrics)
                if missing:
                    problems.append(f"metrics not exported by the code: {missing}")
            except ValueError as err:
                problems.append(f"PromQL does not parse: {err}")
            rep.check(not problems, what + (": " + "; ".join(problems) if problems else ""))
    return used


def check_service_monitor(doc, rep, where, services):
    spec = doc.get("spec", {})
    selector = spec.get("selector", {}).get("matchLabels", {})
    namespaces = spec.get("namespaceSelector", {}).get("matchNames", [])
    matched = [
        s
        for s in services
        if selects(selector, s["metadata"].get("labels", {}))
        and (not namespaces or s["metadata"].get("namespace") in namespaces)
    ]
    rep.check(matched, f"{where}: selects Service(s) {[s['metadata']['name'] for s in matched]}")
    ports = {p.get("name") for s in matched for p in s["spec"].get("ports", [])}
    for ep in spec.get("endpoints", []):
        rep.check(ep.get("port") in ports, f"{where}: endpoint port {ep.get('port')!r} exists")
        rep.check(str(ep.get("path", "/metrics")) == "/metrics", f"{where}: scrapes /metrics")


def container_ports(spec):
    return {
        p.get("name"): p.get("containerPort")
        for c in spec.get("containers", [])
        for p in c.get("ports", [])
    }


def check_workload_security(doc, rep, where):
    spec = pod_spec(doc)
    pod_sc = spec.get("securityContext", {})
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        sc = c.get("securityContext", {})
        res = c.get("resources", {})
        problems = []
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append("readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append("allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append("privileged")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append("capabilities not dropped (drop: [ALL])")
        if sc.get("capabilities", {}).get("add"):
            problems.append("adds capabilities")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp != "RuntimeDefault":
            problems.append(f"seccomp profile is {seccomp!r}, not RuntimeDefault")
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    problems.append(f"no {kind}.{r}")
        for probe in ("livenessProbe", "readinessProbe"):
            path = c.get(probe, {}).get("httpGet", {}).get("path")
            if path != "/health":
                problems.append(f"{probe} is not an HTTP GET of /health")
        rep.check(
            not problems,
            f"{where}/{c['name']}: hardened, resources, probes"
            + (": " + "; ".join(problems) if problems else ""),
        )
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str):
                rep.check(
                    port in container_ports(spec),
                    f"{where}/{c['name']}: {probe} port {port!r} is a named container port",
                )
    annotations = doc["spec"].get("template", {}).get("metadata", {}).get("annotations", {})
    rep.check(
        annotations.get("prometheus.io/scrape") == "true"
        and annotations.get("prometheus.io/port") == str(API_PORT),
        f"{where}: prometheus.io scrape annotations on port {API_PORT}",
    )


def mounts_of(spec, volume_name):
    return [
        m
        for c in spec.get("containers", [])
        for m in c.get("volumeMounts", [])
        if m.get("name") == volume_name
    ]


def under(path, mount):
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def check_sluice_config(doc, cm, rep, where, sluice_bin, tmpdir):
    """The role's sluice.toml agrees with the pod that mounts it."""
    spec = pod_spec(doc)
    text = cm.get("data", {}).get("sluice.toml")
    if not rep.check(
        text is not None, f"{where}: ConfigMap {cm['metadata']['name']} holds sluice.toml"
    ):
        return
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        rep.fail(f"{where}: sluice.toml does not parse: {err}")
        return
    role = config.get("role", "all")
    rep.check(role in {"all", "agent", "processor", "indexer"}, f"{where}: role {role!r}")
    component = pod_labels(doc).get("app.kubernetes.io/component")
    rep.check(component == role, f"{where}: role {role!r} matches component label {component!r}")
    mounts = [m for c in spec.get("containers", []) for m in c.get("volumeMounts", [])]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}

    def mount_for(path):
        best = None
        for m in mounts:
            if under(path, m["mountPath"]) and (
                best is None or len(m["mountPath"]) > len(best["mountPath"])
            ):
                best = m
        return best

    config_mount = next((m for m in mounts if volumes.get(m["name"], {}).get("configMap")), None)
    args = [a for c in spec.get("containers", []) for a in c.get("args", [])]
    if config_mount and "--config" in args:
        path = args[args.index("--config") + 1]
        rep.check(
            path == config_mount["mountPath"].rstrip("/") + "/sluice.toml",
            f"{where}: --config {path} is the mounted ConfigMap",
        )
    listen = config.get("api", {}).get("listen", "127.0.0.1:7280")
    host, _, port = listen.rpartition(":")
    rep.check(
        host in ("0.0.0.0", "[::]"),
        f"{where}: api.listen {listen} is reachable by probes and Prometheus",
    )
    rep.check(
        port.isdigit() and int(port) in container_ports(spec).values(),
        f"{where}: api.listen port {port} is a container port",
    )
    token = config.get("api", {}).get("bearer_token_file")
    if host not in ("127.0.0.1", "::1", "[::1]"):
        m = token and mount_for(token)
        rep.check(
            bool(m) and bool(volumes.get(m["name"], {}).get("secret")),
            f"{where}: api.bearer_token_file {token} is on a mounted Secret",
        )
    writable = {
        "data_dir": config.get("data_dir"),
        "ingest.state_dir": config.get("ingest", {}).get("state_dir"),
    }
    for key, path in writable.items():
        if path is None:
            continue
        m = mount_for(path)
        ok = (
            bool(m)
            and not m.get("readOnly")
            and (
                m["name"] in claims
                or any(
                    k in volumes.get(m["name"], {})
                    for k in ("hostPath", "emptyDir", "persistentVolumeClaim")
                )
            )
        )
        rep.check(ok, f"{where}: {key} {path} is on a writable volume")
    pods_dir = config.get("ingest", {}).get("pods_dir")
    if role in ("all", "agent"):
        m = pods_dir and mount_for(pods_dir)
        rep.check(
            bool(m)
            and m.get("readOnly") is True
            and volumes.get(m["name"], {}).get("hostPath", {}).get("path") == pods_dir,
            f"{where}: ingest.pods_dir {pods_dir} is the node's hostPath, read-only",
        )
        env = {e["name"] for c in spec.get("containers", []) for e in c.get("env", [])}
        rep.check("NODE_NAME" in env, f"{where}: NODE_NAME from the downward API")
    if sluice_bin:
        path = Path(tmpdir, f"{cm['metadata']['name']}.toml")
        path.write_text(text)
        proc = subprocess.run(
            [sluice_bin, "config", "check", str(path)], check=False, capture_output=True, text=True
        )
        rep.check(
            proc.returncode == 0,
            f"{where}: `sluice config check` "
            + (proc.stdout + proc.stderr).strip().replace("\n", " | "),
        )


def check_render(path, docs, version, rep, metrics, sluice_bin, tmpdir):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    services = by_kind.get("Service", [])
    used_metrics = set()
    for doc in docs:
        where = f"{path.name}: {doc['kind']}/{doc['metadata']['name']}"
        if api_group(doc["apiVersion"]) in CORE_GROUPS:
            validate_core(doc, version, rep, where)
        elif doc["kind"] == "KafkaTopic":
            check_kafka_topic(doc, rep, where)
        elif doc["kind"] == "PrometheusRule":
            used_metrics |= check_prometheus_rule(doc, rep, where, metrics)
        elif doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc, rep, where, services or ALL_SERVICES)
        else:
            rep.fail(
                f"{where}: custom kind {doc['apiVersion']}/{doc['kind']} has no check; "
                "add one to deploy/tools/validate.py"
            )
    for svc in services:
        where = f"{path.name}: Service/{svc['metadata']['name']}"
        selector = svc["spec"].get("selector", {})
        matched = [w for w in workloads if selects(selector, pod_labels(w))]
        rep.check(matched, f"{where}: selects {[w['metadata']['name'] for w in matched]}")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort")
            if isinstance(target, str):
                rep.check(
                    all(target in container_ports(pod_spec(w)) for w in matched),
                    f"{where}: targetPort {target!r} exists in every selected pod",
                )
    for pdb in by_kind.get("PodDisruptionBudget", []):
        selector = pdb["spec"].get("selector", {}).get("matchLabels", {})
        matched = [w["metadata"]["name"] for w in workloads if selects(selector, pod_labels(w))]
        rep.check(
            len(matched) == 1,
            f"{path.name}: PodDisruptionBudget/"
            f"{pdb['metadata']['name']} covers exactly one workload {matched}",
        )
    for w in workloads:
        where = f"{path.name}: {w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        check_workload_security(w, rep, where)
        sa = spec.get("serviceAccountName", "default")
        rep.check(("ServiceAccount", sa) in names, f"{where}: ServiceAccount {sa} exists")
        pc = spec.get("priorityClassName")
        if pc:
            rep.check(("PriorityClass", pc) in names, f"{where}: PriorityClass {pc} exists")
        if w["kind"] in ("Deployment", "StatefulSet") and w["spec"].get("replicas", 1) > 1:
            rep.check(
                any(
                    selects(p["spec"].get("selector", {}).get("matchLabels", {}), pod_labels(w))
                    for p in by_kind.get("PodDisruptionBudget", [])
                ),
                f"{where}: has a PodDisruptionBudget",
            )
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                cm_name = vol["configMap"]["name"]
                cm = next(
                    (c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"] == cm_name),
                    None,
                )
                if rep.check(cm is not None, f"{where}: ConfigMap {cm_name} exists"):
                    check_sluice_config(w, cm, rep, where, sluice_bin, tmpdir)
            if "secret" in vol:
                REQUIRED_SECRETS.add(vol["secret"]["secretName"])
            claim = vol.get("persistentVolumeClaim", {}).get("claimName")
            if claim:
                rep.check(
                    ("PersistentVolumeClaim", claim) in names,
                    f"{where}: PersistentVolumeClaim {claim} exists",
                )
        for c in spec.get("containers", []):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    REQUIRED_SECRETS.add(ref["name"])
    return used_metrics


# ---- Kibana -------------------------------------------------------------------------------


def kql_fields(query):
    """Field names of a KQL query: `field : value`, `field >= 3`, `field : (a or b)`."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    return set(re.findall(r"(@?[A-Za-z_][A-Za-z0-9_.]*)\s*(?::|<=|>=|<|>)", stripped))


def lens_fields(columns, where, rep, kinds):
    """Fields a Lens layer uses, each checked for an index kind that suits the operation."""
    fields = set()
    for cid, col in columns.items():
        op = col.get("operationType")
        field = col.get("sourceField")
        queries = []
        if col.get("filter"):
            queries.append(col["filter"]["query"])
        params = col.get("params", {})
        queries += [f["input"]["query"] for f in params.get("filters", [])]
        queries += re.findall(r"kql='((?:[^'\\]|\\.)*)'", params.get("formula", ""))
        order_agg = params.get("orderAgg") or {}
        if order_agg.get("sourceField") not in (None, LENS_RECORDS):
            fields.add(order_agg["sourceField"])
        if params.get("orderBy", {}).get("type") == "column":
            rep.check(
                params["orderBy"]["columnId"] in columns,
                f"{where}: column {cid} ranks by an existing column",
            )
        for q in queries:
            fields |= kql_fields(q)
        if field and field != LENS_RECORDS:
            fields.add(field)
            kind = kinds.get(field)
            if op in BUCKET_OPS or op == "date_histogram":
                rep.check(
                    kind in AGGREGATABLE, f"{where}: {op} on {field} ({kind}) is aggregatable"
                )
            if op in NUMERIC_OPS:
                rep.check(kind == "Long", f"{where}: {op} on {field} ({kind}) is numeric")
        for ref in col.get("references", []):
            rep.check(ref in columns, f"{where}: column {cid} references existing {ref}")
    return fields


def check_kibana(repo, rep):
    kibana = repo / "deploy" / "kibana"
    schema = schema_fields(repo / "schemas" / "json" / "log_event.v1.schema.json")
    kinds = field_kinds(repo / "schemas" / "src" / "fields.rs")
    rep.check(
        len(schema) > 30 and len(kinds) > 30,
        f"event schema: {len(schema)} paths, fields.rs: {len(kinds)} indexed fields",
    )
    for path in sorted(kibana.glob("*.ndjson")):
        objects = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.name}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                rep.fail(f"{where}: not JSON: {err}")
                continue
            if not rep.check(
                isinstance(obj, dict) and {"type", "id", "attributes"} <= set(obj),
                f"{where}: saved object with type, id, attributes",
            ):
                continue
            objects.append(obj)
            attrs = obj["attributes"]
            where = f"{path.name}:{n} {obj['type']} {attrs.get('title')!r}"
            fields = set()
            try:
                if obj["type"] == "index-pattern":
                    fields.add(attrs.get("timeFieldName"))
                    fields |= set(json.loads(attrs.get("fieldFormatMap", "{}")))
                    rep.check(
                        attrs.get("title") == "logs-sluice-*"
                        and attrs.get("timeFieldName") == "@timestamp",
                        f"{where}: data view over logs-sluice-* on @timestamp",
                    )
                elif obj["type"] == "lens":
                    state = attrs["state"]
                    fields |= kql_fields(state.get("query", {}).get("query", ""))
                    for layer in state["datasourceStates"]["formBased"]["layers"].values():
                        fields |= lens_fields(layer["columns"], where, rep, kinds)
                        rep.check(
                            sorted(layer["columnOrder"]) == sorted(layer["columns"]),
                            f"{where}: columnOrder lists every column",
                        )
                elif obj["type"] == "dashboard":
                    panels = json.loads(attrs["panelsJSON"])
                    json.loads(attrs["optionsJSON"])
                    source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
                    fields |= kql_fields(source.get("query", {}).get("query", ""))
                    refs = {r["name"] for r in obj["references"]}
                    rep.check(
                        panels and all(p["panelRefName"] in refs for p in panels),
                        f"{where}: {len(panels)} panels, each with a reference",
                    )
                else:
                    rep.fail(f"{where}: unexpected saved object type {obj['type']}")
            except (KeyError, TypeError, json.JSONDecodeError) as err:
                rep.fail(f"{where}: malformed: {err!r}")
            unknown = sorted(f for f in fields if f not in schema)
            # The Elasticsearch mapping is `dynamic: false` and derived from FIELDS, so a field
            # the schema has but FIELDS does not index can be neither searched nor aggregated.
            unindexed = sorted(f for f in fields if f in schema and f not in kinds)
            rep.check(
                not unknown and not unindexed,
                f"{where}: fields {sorted(fields)} in the event schema and indexed"
                + (f"; NOT in the schema: {unknown}" if unknown else "")
                + (f"; NOT indexed (schemas/src/fields.rs): {unindexed}" if unindexed else ""),
            )
        ids = {(o["type"], o["id"]) for o in objects}
        dangling = [
            (o["id"], r)
            for o in objects
            for r in o.get("references", [])
            if (r["type"], r["id"]) not in ids
        ]
        rep.check(
            not dangling,
            f"{path.name}: every reference resolves"
            + (f"; dangling: {dangling}" if dangling else ""),
        )
        rep.check(len(ids) == len(objects), f"{path.name}: object ids are unique")
        boards = [o["attributes"]["title"] for o in objects if o["type"] == "dashboard"]
        rep.check(len(boards) >= 4, f"{path.name}: dashboards {boards}")
    generator = kibana / "generate.py"
    if generator.exists():
        out = subprocess.run(
            [sys.executable, str(generator), "--stdout"], capture_output=True, text=True, check=True
        ).stdout
        rep.check(
            out == (kibana / "sluice.ndjson").read_text(),
            "sluice.ndjson is what generate.py writes (run it after editing)",
        )


# ---- main ---------------------------------------------------------------------------------

REQUIRED_SECRETS = set()
ALL_SERVICES = []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True, type=Path)
    parser.add_argument("--k8s-version", required=True)
    parser.add_argument("--tmpdir", required=True)
    parser.add_argument("--sluice-bin")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("renders", nargs="+", type=Path)
    args = parser.parse_args()
    rep = Report(args.verbose)

    metrics = exported_metrics(args.repo)
    print(f"== metrics the Rust sources export: {len(metrics)} names")
    renders = {}
    for path in args.renders:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        renders[path] = docs
        ALL_SERVICES.extend(d for d in docs if d["kind"] == "Service")
    used = set()
    for path, docs in renders.items():
        rep.begin(
            f"{path.name}: {len(docs)} objects ({', '.join(sorted({d['kind'] for d in docs}))})"
        )
        used |= check_render(
            path, docs, args.k8s_version, rep, metrics, args.sluice_bin, args.tmpdir
        )
        rep.end()
    if used:
        print(f"   sluice metrics the rules use: {', '.join(sorted(used))}")
    rep.begin("kibana saved objects (deploy/kibana/*.ndjson)")
    check_kibana(args.repo, rep)
    rep.end()
    print(f"== total: {rep.checks} checks, {rep.errors} failed")
    if REQUIRED_SECRETS:
        print(
            "   Secrets the pods need, created by the operator (not in the manifests): "
            + ", ".join(sorted(REQUIRED_SECRETS))
        )
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
