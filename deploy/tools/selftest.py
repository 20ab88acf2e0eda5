#!/usr/bin/env python3
"""Proves that scripts/validate-deploy catches what it claims to catch.

Copies the repository (without build output) to a temporary directory once per case, breaks
one thing in the copy, runs the copy's scripts/validate-deploy and requires a non-zero exit
with the expected message. The unbroken copy must pass. Run by `scripts/validate-deploy
--self-test`, which provides the venv.

    selftest.py --repo ROOT
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Directories never needed by the checks: build output and VCS metadata.
SKIP = {"target", "targets", ".git", "fuzz", "node_modules"}

# (name, file, text to replace, replacement, message validate-deploy must print)
CASES = [
    (
        "kibana field missing from the event schema",
        "deploy/kibana/generate.py",
        'terms("user.name", 10, "n")',
        'terms("user.id", 10, "n")',
        "NOT in the schema: ['user.id']",
    ),
    (
        "kibana field in the schema but not indexed",
        "deploy/kibana/generate.py",
        'query="user.name : *",',
        'query="kubernetes.pod : *",',
        "NOT indexed (schemas/src/fields.rs): ['kubernetes.pod']",
    ),
    (
        "kibana terms aggregation on a full-text field",
        "deploy/kibana/generate.py",
        'terms("sluice.pattern.id"',
        'terms("sluice.pattern.template"',
        "terms on sluice.pattern.template (Text) is aggregatable",
    ),
    (
        "kibana NDJSON edited by hand",
        "deploy/kibana/sluice.ndjson",
        "Sluice · Logins",
        "Sluice · Log-ins",
        "sluice.ndjson is what generate.py writes",
    ),
    (
        "alert on a metric the code does not export",
        "deploy/prometheus/rules.yaml",
        "sluice_alerts_dropped_total",
        "sluice_alert_dropped_total",
        "metrics not exported by the code: ['sluice_alert_dropped_total']",
    ),
    (
        "PromQL syntax error",
        "deploy/prometheus/rules.yaml",
        "rate(sluice_processor_dead_letters_total[10m]) > 0",
        "rate(sluice_processor_dead_letters_total[10m] > 0",
        "PromQL does not parse",
    ),
    (
        "misspelt Kubernetes field (strict schema)",
        "deploy/base/agent.yaml",
        "        readinessProbe:",
        "        readinesProbe:",
        "'readinesProbe' was unexpected",
    ),
    (
        "container keeps its capabilities",
        "deploy/base/processor.yaml",
        '            drop: ["ALL"]',
        '            drop: ["NET_RAW"]',
        "capabilities not dropped",
    ),
    (
        "checkpoint dir on a read-only mount",
        "deploy/base/agent.yaml",
        "          mountPath: /var/lib/sluice\n",
        "          mountPath: /var/lib/sluice\n          readOnly: true\n",
        "ingest.state_dir /var/lib/sluice/checkpoints is on a writable volume",
    ),
    (
        "config listens on a port the pod does not expose",
        "deploy/base/config/indexer.toml",
        'listen = "0.0.0.0:7280"',
        'listen = "0.0.0.0:8080"',
        "api.listen port 8080 is a container port",
    ),
    (
        "Service selects no pod",
        "deploy/base/common/service.yaml",
        '    sluice/api: "true"\n  ports:',
        '    sluice/api: "yes"\n  ports:',
        "Service/sluice-api: selects []",
    ),
    (
        "topic that can never satisfy min.insync.replicas",
        "deploy/overlays/distributed/kafka-topics.yaml",
        "  replicas: 3",
        "  replicas: 1",
        "min.insync.replicas 2 > replicas 1",
    ),
    (
        "kustomization names a missing file",
        "deploy/overlays/embedded/kustomization.yaml",
        "- statefulset.yaml",
        "- statefulset.yaml\n- missing.yaml",
        "FAIL  kubectl kustomize deploy/overlays/embedded",
    ),
    (
        "custom resource without a check",
        "deploy/overlays/distributed/kafka-topics.yaml",
        "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata:\n  name: sluice.raw",
        "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaUser\nmetadata:\n  name: sluice.raw",
        "KafkaUser has no check",
    ),
]


def copy_repo(repo, dest):
    shutil.copytree(repo, dest, ignore=lambda _dir, names: [n for n in names if n in SKIP])


def run(copy):
    proc = subprocess.run(
        [str(copy / "scripts" / "validate-deploy")], capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True, type=Path)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sluice-deploy-selftest.") as tmp:
        pristine = Path(tmp, "pristine")
        copy_repo(args.repo, pristine)
        code, out = run(pristine)
        if code != 0:
            print(f"  FAIL  the unmodified copy does not pass (exit {code}):\n{out}")
            return 1
        print("  ok    unmodified copy passes")
        for i, (name, rel, old, new, expected) in enumerate(CASES):
            copy = Path(tmp, f"case{i}")
            shutil.copytree(pristine, copy)
            path = copy / rel
            text = path.read_text()
            if old not in text:
                print(f"  FAIL  {name}: {rel} no longer contains {old!r}; update the case")
                failures += 1
                continue
            path.write_text(text.replace(old, new, 1))
            if rel.endswith("generate.py"):
                subprocess.run([sys.executable, str(path)], check=True, capture_output=True)
            code, out = run(copy)
            if code != 0 and expected in out:
                print(f"  ok    {name}: caught")
            else:
                failures += 1
                print(f"  FAIL  {name}: exit {code}, expected message {expected!r} not seen")
                print("        " + "\n        ".join(out.splitlines()[-15:]))
            shutil.rmtree(copy)
    print(f"== self-test: {len(CASES)} broken copies, {failures} not caught")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
