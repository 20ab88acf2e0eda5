#!/usr/bin/env python3
"""Makes a copy of deploy/ renderable by kustomize v2.0 (kubectl <= 1.20, Debian's
kubernetes-client): that version reads only files under `resources:` and wants directories
under `bases:`, which kustomize v5 deprecates. scripts/validate-deploy runs this on a
temporary copy, so the checked-in kustomizations stay in the current form.

The v2 render then equals the v5 one except that v2 also stamps `namespace: sluice` on the
cluster-scoped PriorityClass (it does not know the kind is cluster-scoped); it is only
validated, never applied.

    kustomize_v2.py DEPLOY_COPY_DIR
"""

import sys
from pathlib import Path

import yaml


def main():
    root = Path(sys.argv[1])
    for path in sorted(root.rglob("kustomization.yaml")):
        doc = yaml.safe_load(path.read_text())
        resources = doc.get("resources", [])
        dirs = [r for r in resources if (path.parent / r).is_dir()]
        if not dirs:
            continue
        doc["resources"] = [r for r in resources if r not in dirs]
        doc["bases"] = doc.get("bases", []) + dirs
        if not doc["resources"]:
            del doc["resources"]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        print(f"  {path.relative_to(root)}: bases {dirs}")


if __name__ == "__main__":
    main()
