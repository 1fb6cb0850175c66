"""The model registry: a directory tree on a local disk or a mounted volume.

    <root>/<model>/<version>/    manifest.json, model.safetensors, report/*.png  (immutable)
    <root>/<model>/production    JSON {"version": "3", "history": ["1", "3"]}   (the alias)

Versions are positive integers, assigned at publication. Publication is atomic: the
artifact is copied into a hidden temp dir, fsynced, its manifest stamped with the version,
then renamed to the version number. `os.rename` onto an existing directory fails, so two
concurrent jobs can never claim the same number: the loser retries with the next one.
A crashed job leaves at most a hidden temp dir, never a half version. The alias file is
replaced with write-temp + fsync + rename, so readers see the old or the new alias.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vwbase.errors import ModelError

ALIAS = "production"
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: str
    path: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with file.open("rb") as fh:
                os.fsync(fh.fileno())
    for d in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        _fsync_dir(d)


def _history(alias: dict[str, object]) -> list[str]:
    raw = alias.get("history")
    return [str(v) for v in raw] if isinstance(raw, list) else []


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _model_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith(".") or "@" in name:
            raise ModelError(f"invalid model name {name!r}")
        return self.root / name

    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def versions(self, name: str) -> list[str]:
        model_dir = self._model_dir(name)
        if not model_dir.is_dir():
            return []
        found = [p.name for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        return sorted(found, key=int)

    def publish(self, name: str, artifact_dir: Path) -> str:
        """Copy `artifact_dir` in as the next version; return the version."""
        from modelstore.artifact import read_manifest, write_manifest

        model_dir = self._model_dir(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale_tmp(model_dir)
        tmp = model_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        shutil.copytree(artifact_dir, tmp)
        try:
            manifest = read_manifest(tmp)
            for _ in range(1000):
                existing = self.versions(name)
                version = str(int(existing[-1]) + 1 if existing else 1)
                write_manifest(tmp, manifest.model_copy(update={"name": name, "version": version}))
                _fsync_tree(tmp)
                try:
                    os.rename(tmp, model_dir / version)
                except OSError:
                    if (model_dir / version).exists():
                        continue  # another job won this number: take the next one
                    raise
                _fsync_dir(model_dir)
                return version
            raise ModelError(f"could not allocate a version for {name}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _clean_stale_tmp(self, model_dir: Path) -> None:
        now = time.time()
        for p in model_dir.glob(f"{TMP_PREFIX}*"):
            try:
                age = now - p.stat().st_mtime
            except FileNotFoundError:  # another job just renamed or removed it
                continue
            if age > STALE_TMP_SECONDS:
                shutil.rmtree(p, ignore_errors=True)

    # --- the production alias -----------------------------------------------------------
    def _alias_path(self, name: str) -> Path:
        return self._model_dir(name) / ALIAS

    def _read_alias(self, name: str) -> dict[str, object]:
        try:
            data = json.loads(self._alias_path(name).read_text())
        except FileNotFoundError:
            return {"version": None, "history": []}
        except (OSError, ValueError) as exc:
            raise ModelError(f"unreadable alias {self._alias_path(name)}: {exc}") from exc
        return data if isinstance(data, dict) else {"version": None, "history": []}

    def _write_alias(self, name: str, version: str, history: list[str]) -> None:
        path = self._alias_path(name)
        tmp = path.with_name(f"{TMP_PREFIX}alias-{uuid.uuid4().hex}")
        with tmp.open("w") as fh:
            json.dump({"version": version, "history": history[-50:], "updated_at": time.time()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def production(self, name: str) -> str | None:
        version = self._read_alias(name).get("version")
        return str(version) if version is not None else None

    def alias_token(self, name: str) -> str | None:
        """Cheap to poll: changes whenever the alias moves (the worker watches it)."""
        try:
            stat = self._alias_path(name).stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_size}"

    def promote(self, name: str, version: str) -> None:
        if version not in self.versions(name):
            raise ModelError(self._unknown(name, version))
        alias = self._read_alias(name)
        history = _history(alias)
        if alias.get("version") != version:
            history.append(version)
        self._write_alias(name, version, history)

    def rollback(self, name: str) -> str:
        """Move production back to the version it pointed at before the current one."""
        alias = self._read_alias(name)
        history = _history(alias)
        if len(history) < 2:
            raise ModelError(f"{name}: no earlier production version to roll back to")
        history.pop()
        previous = history[-1]
        self._write_alias(name, previous, history)
        return previous

    # --- resolution -----------------------------------------------------------------------
    def _unknown(self, name: str, version: str | None) -> str:
        if not self.versions(name):
            known = ", ".join(self.models()) or "none"
            return f"unknown model {name!r} in {self.root} (models: {known})"
        listed = ", ".join(self.versions(name)[-10:])
        return f"unknown version {version!r} of {name} (versions: {listed})"

    def resolve(self, spec: str) -> ResolvedModel:
        """'NAME' = the production version; 'NAME@VERSION' = that version."""
        name, _, version = spec.partition("@")
        if not version:
            prod = self.production(name)
            if prod is None:
                if not self.versions(name):
                    raise ModelError(self._unknown(name, None))
                raise ModelError(f"{name} has no production version; use {name}@VERSION or promote")
            version = prod
        path = self._model_dir(name) / version
        if not path.is_dir():
            raise ModelError(self._unknown(name, version))
        return ResolvedModel(name, version, path)
