"""A small kustomize, just what deploy/'s kustomizations use, so tests need no kubectl.

Supported: `resources` (files and directories), `components` (their resources and
patches), JSON 6902 `patches` with a kind/name target, `namespace`, `images` (newName,
newTag). Anything else in a kustomization is refused, so the renderer cannot silently
drift from what kustomize would do; where kubectl is installed a test compares the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
KEYS = {"apiVersion", "kind", "namespace", "resources", "components", "patches", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(directory: Path) -> list[Doc]:
    """The objects `kubectl kustomize directory` would print (order aside)."""
    spec = _kustomization(directory)
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        docs += render(path) if path.is_dir() else load_docs(path)
    for entry in spec.get("components", []):
        component = directory / entry
        comp = _kustomization(component)
        assert comp["kind"] == "Component", f"{component} is not a Component"
        docs += [d for r in comp.get("resources", []) for d in load_docs(component / r)]
        docs = _patched(docs, comp.get("patches", []))
    docs = _patched(docs, spec.get("patches", []))
    if "namespace" in spec:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        for container in containers(docs):
            _retag(container, image)
    return docs


def _kustomization(directory: Path) -> Doc:
    spec: Doc = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KEYS
    assert not unknown, f"{directory}: this renderer does not support {sorted(unknown)}"
    return spec


def pod_spec(doc: Doc) -> Doc | None:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template")
    return template["spec"] if template else None


def containers(docs: list[Doc]) -> list[Doc]:
    pods = [p for p in map(pod_spec, docs) if p is not None]
    return [c for p in pods for c in p.get("containers", []) + p.get("initContainers", [])]


def _retag(container: Doc, image: Doc) -> None:
    name, _, tag = container["image"].partition(":")
    if name != image["name"]:
        return
    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def _patched(docs: list[Doc], patches: list[Doc]) -> list[Doc]:
    for patch in patches:
        target = patch["target"]
        ops = yaml.safe_load(patch["patch"])
        for doc in docs:
            if doc["kind"] == target["kind"] and doc["metadata"]["name"] == target["name"]:
                for op in ops:
                    _apply(doc, op)
    return docs


def _apply(doc: Doc, op: Doc) -> None:
    *parents, last = [p for p in op["path"].split("/") if p]
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if op["op"] == "remove":
        del node[key]
    elif op["op"] == "add" and isinstance(node, list):
        node.insert(key, op["value"])
    elif op["op"] in ("add", "replace"):
        node[key] = op["value"]
    else:
        raise AssertionError(f"unsupported patch op {op['op']}")
