"""`vaewatch schemas export`: JSON Schemas of the wire formats for downstream teams."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.episodes import AlertEpisode
from schemas.manifest import ModelManifest
from schemas.messages import AnomalyEvent, CorrectedWindow, SensorWindow
from vwbase.argtypes import output_directory

DEFAULT_DIR = Path(__file__).resolve().parent / "json"
EXPORTED: dict[str, type[BaseModel]] = {
    "sensor-window.schema.json": SensorWindow,
    "anomaly-event.schema.json": AnomalyEvent,
    "corrected-window.schema.json": CorrectedWindow,
    "alert-episode.schema.json": AlertEpisode,
    "model-manifest.schema.json": ModelManifest,
}


def render_schemas() -> dict[str, str]:
    """File name -> JSON text (sorted keys, stable), exactly what `export` writes."""
    out: dict[str, str] = {}
    for name, model in EXPORTED.items():
        schema: dict[str, Any] = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def _export(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_schemas().items():
        (out_dir / name).write_text(text, encoding="utf-8")
        print(out_dir / name)
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    schemas = sub.add_parser("schemas", help="export the JSON Schemas of the wire formats")
    actions = schemas.add_subparsers(dest="schemas_command", metavar="<action>", required=True)
    export = actions.add_parser("export", help="write one JSON Schema file per message format")
    export.add_argument(
        "--out",
        type=output_directory,
        default=str(DEFAULT_DIR),
        help=f"directory (default {DEFAULT_DIR})",
    )
    export.set_defaults(func=_export)
