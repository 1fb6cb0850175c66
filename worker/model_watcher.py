"""Hot model reload: follow the registry's `production` alias without restarting.

A background thread polls the alias (a cheap stat). When it moves, the new version is
loaded and verified (checksum, architecture) in that thread; only a verified model is
swapped in, and the loop picks it up between batches. A broken version is refused, logged
and counted, and the current model keeps serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from modelstore.artifact import load_artifact
from modelstore.registry import Registry
from vaecore import Detector
from vwbase.errors import ModelError
from worker.waiting import Waiting

log = structlog.get_logger(__name__)


class ModelWatcher:
    def __init__(
        self,
        registry_root: Path,
        model: str,
        device: str,
        interval_s: float,
        on_result: Callable[[str, str, str], None] | None = None,
        waiting: Waiting | None = None,
        precision: str = "auto",
    ) -> None:
        self.registry = Registry(registry_root)
        self.model = model
        self.device = device
        self.precision = precision  # the network's numeric precision (vaecore.device)
        self.interval_s = interval_s
        self.on_result = on_result or (lambda result, version, reason: None)
        self._current: Detector | None = None
        self._token: str | None = None
        self._refused: str | None = None
        self._refusal = ""  # why the last version was refused, for the waiting report
        self.waiting = waiting
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> Detector | None:
        with self._lock:
            return self._current

    def check_once(self) -> bool:
        """Look at the alias; load and swap if it moved. True when a new model was swapped in.

        While there is no model to serve, says why (`worker.waiting`), at its own pace.
        """
        swapped = self._check()
        if self.waiting is not None:
            if self.current() is None:
                self.waiting.still("model", self.why_no_model())
            else:
                self.waiting.over("model")
        return swapped

    def why_no_model(self) -> str:
        """One line for an operator: what is missing in the registry, or what was refused."""
        where = f"registry {self.registry.root}"
        try:
            versions = self.registry.versions(self.model)
            if not versions:
                others = ", ".join(self.registry.models()) or "none"
                return f"no version of model {self.model!r} in {where} (models there: {others})"
            if self.registry.production(self.model) is None:
                return (
                    f"model {self.model!r} has versions {', '.join(versions[-5:])} in {where} "
                    "but none is promoted to production"
                )
        except (ModelError, OSError) as exc:
            return f"{where} is unreadable: {exc}"
        return f"the production version of {self.model!r} was refused: {self._refusal}"

    def _check(self) -> bool:
        token = self.registry.alias_token(self.model)
        if token is None or token == self._token:
            return False
        self._token = token
        try:
            resolved = self.registry.resolve(self.model)
        except ModelError as exc:
            self._refusal = str(exc)
            log.error("model_refused", model=self.model, reason=str(exc))
            self.on_result("refused", "?", str(exc))
            return False
        current = self.current()
        if current is not None and current.version == resolved.version:
            return False
        if self._refused == resolved.version:
            return False
        try:
            detector = load_artifact(resolved.path, self.device)
            detector.precision = self.precision
        except ModelError as exc:
            self._refused = resolved.version
            self._refusal = f"version {resolved.version}: {exc}"
            log.error("model_refused", model=self.model, version=resolved.version, reason=str(exc))
            self.on_result("refused", resolved.version, str(exc))
            return False
        if current is not None and detector.channels != current.channels:
            reason = (
                f"version {resolved.version} expects {len(detector.channels)} channels "
                f"{list(detector.channels)[:3]}..., the serving model {len(current.channels)}; "
                "a worker does not switch channel sets (restart it for a new schema)"
            )
            self._refused = resolved.version
            log.error("model_refused", model=self.model, version=resolved.version, reason=reason)
            self.on_result("refused", resolved.version, reason)
            return False
        with self._lock:
            old, self._current = self._current, detector
        log.info(
            "model_loaded",
            model=self.model,
            version=detector.version,
            previous=old.version if old else None,
            channels=len(detector.channels),
            window=detector.window,
            device=str(detector.device),
            scoring_path="device" if detector.scores_on_device else "host",
        )
        self.on_result("loaded", detector.version, "")
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check_once()
            except Exception as exc:  # a watcher bug must never take the worker down
                log.exception("model_watch_failed", error=str(exc))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
