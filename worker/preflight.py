"""Settings that can never work stop the worker at start, with one line and exit 2.

Decided per case, as an operator would want it:
- never works, so exit now (a restart loop would only hide it): CUDA asked for on a host
  without it, a registry path that is a file, a TLS file that is not there (checked when
  the settings are read, `worker.settings`), a malformed value;
- may heal, so keep retrying and say so (`worker.waiting`): no model published yet or
  none under that name, a broker that is not up yet, a host name not (yet) in DNS.
"""

from __future__ import annotations

from pathlib import Path

from kafkaio.settings import env_var
from vwbase.errors import ModelError, UserInputError
from worker.settings import WorkerSettings


def check_worker_can_start(settings: WorkerSettings) -> None:
    """Raise `UserInputError` (one line, naming the variable) for a setting that never works."""
    _check_registry(settings.registry)
    _check_device(settings.device)


def _check_registry(root: Path) -> None:
    for part in (root, *root.parents):
        if part.exists():
            if not part.is_dir():
                where = "is" if part == root else f"is under {part}, which is"
                raise UserInputError(
                    f"{env_var('registry')} / --registry: {root} {where} a file, not a directory"
                )
            return


def _check_device(requested: str) -> None:
    """CUDA asked for (`cuda`, `cuda:N`) must exist; `auto` falls back to the CPU."""
    if not requested.startswith("cuda"):
        return
    import torch

    from vaecore import select_device

    where = f"{env_var('device')} / --device"
    try:
        device = select_device(requested)
    except ModelError as exc:
        raise UserInputError(f"{where}: {exc}; use auto or cpu") from None
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise UserInputError(
            f"{where}: {requested!r} requested but this host has {count} CUDA device(s)"
        )
