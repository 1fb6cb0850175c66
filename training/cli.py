"""Sub-commands of the batch side: `train`, `score`, `evaluate`, `models`."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from training.job import EXIT_KEPT_OLD, TrainOptions, run_training_job
from training.registry import Registry
from vaewatch.errors import UserInputError
from vaewatch.threads import apply_torch_threads

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def parse_duration(text: str) -> float:
    match = DURATION.match(text.strip())
    if not match:
        raise UserInputError(f"--since {text!r}: use a number and a unit, e.g. 30m, 12h, 7d")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=False, default=str))


# --- train -------------------------------------------------------------------------------
def _train(args: argparse.Namespace) -> int:
    apply_torch_threads()
    opts = TrainOptions(
        window=args.window,
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        max_windows=args.max_windows,
        n_samples=args.n_samples,
        variance=args.variance,
        method=args.threshold_method,
        risk=args.false_alarm_rate,
        tolerance=args.tolerance,
        max_steps=args.max_steps,
        score_kind=args.score_kind,
        smoothing=args.smoothing,
        progress=(not args.no_progress and sys.stderr.isatty()) or args.progress,
    )
    paths = [Path(p) for p in args.data or []]
    tmp_dir: Path | None = None
    if args.from_topic:
        from training.topic_source import dump_topic_to_csv

        tmp_dir = dump_topic_to_csv(
            args.from_topic, parse_duration(args.since), args.bootstrap_servers
        )
        paths = [tmp_dir]
    if not paths:
        raise UserInputError("give --data PATH... or --from-topic TOPIC --since DURATION")
    try:
        result = run_training_job(paths, Path(args.registry), args.model, opts, args.promote)
    finally:  # the topic's CSV copy (vaewatch-topic-*) is scratch: gone however training ends
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    _print_json(result.summary)
    if result.exit_code == EXIT_KEPT_OLD:
        print(
            f"vaewatch train: gate kept production; candidate {args.model}@{result.version} "
            "is published but not promoted",
            file=sys.stderr,
        )
    return result.exit_code


def _add_train(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "train",
        help="train, calibrate, evaluate and publish a model version",
        description=(
            "Reads every train.csv under each PATH (all with the same channels), trains the "
            "1D-conv VAE, calibrates thresholds on held-out data, evaluates on labelled "
            "test.csv files when present, writes a report and publishes a new immutable "
            "version. Exit codes: 0 published (and promoted with --promote), 4 the promotion "
            "gate kept the old model, 2 bad input, 1 unexpected failure."
        ),
    )
    p.add_argument("--data", nargs="+", metavar="PATH", help="folders or train.csv files")
    p.add_argument("--registry", required=True, help="model registry directory")
    p.add_argument("--model", required=True, help="model name in the registry")
    p.add_argument(
        "--window",
        type=_positive_int,
        default=TrainOptions.window,
        help=f"model window in time steps (default {TrainOptions.window}); "
        "messages may be longer: they are scored in overlapping sub-windows",
    )
    p.add_argument("--epochs", type=_positive_int, default=40, help="max epochs (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--promote", action="store_true", help="move `production` if the gate agrees")
    p.add_argument("--tolerance", type=float, default=0.02, help="gate tolerance (default 0.02)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] (default auto)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="held-out tail of each series")
    p.add_argument(
        "--max-windows", type=_positive_int, default=20000, help="cap on training windows"
    )
    p.add_argument(
        "--n-samples", type=int, default=0, help="latent samples L for scoring (0 = mean)"
    )
    p.add_argument(
        "--variance",
        choices=["point", "channel"],
        default=TrainOptions.variance,
        help=f"decoder variance: one per channel, or per point (default {TrainOptions.variance})",
    )
    p.add_argument("--threshold-method", choices=["pot", "quantile"], default=TrainOptions.method)
    p.add_argument(
        "--false-alarm-rate",
        type=float,
        default=TrainOptions.risk,
        help=f"per-step target of the smoothed score (default {TrainOptions.risk})",
    )
    p.add_argument("--max-steps", type=_positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--from-topic", metavar="TOPIC", help="train on windows read from a topic")
    p.add_argument("--since", default="7d", help="with --from-topic: how far back (e.g. 7d)")
    p.add_argument("--bootstrap-servers", default=None, help="with --from-topic (else env)")
    p.add_argument("--progress", action="store_true", help="force the progress bar")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--score-kind",
        choices=["nll", "error"],
        default=TrainOptions.score_kind,
        help="point score: Gaussian negative log-likelihood, or squared reconstruction error "
        f"in normalised units (default {TrainOptions.score_kind})",
    )
    p.add_argument(
        "--smoothing",
        type=_non_negative_int,
        default=TrainOptions.smoothing,
        help="steps of the rolling mean the thresholds apply to; 0 = the dominant period of "
        "the training data (default), 1 = no smoothing",
    )
    p.set_defaults(func=_train)


# --- score / evaluate ----------------------------------------------------------------------
def _load_detector(args: argparse.Namespace) -> Any:
    """The model for `score` / `evaluate`, after setting torch's threads (both start here)."""
    from vaecore import Detector

    apply_torch_threads()

    resolved = Registry(Path(args.registry)).resolve(args.model)
    return Detector.from_artifact(resolved.path, args.device)


def _score(args: argparse.Namespace) -> int:
    from training.backfill import score_table, write_scores
    from training.data import load_tables

    detector = _load_detector(args)
    tables = load_tables([Path(p) for p in args.data], f"{args.split}.csv")
    started = time.perf_counter()
    for table in tables:
        path = write_scores(score_table(detector, table), Path(args.out), detector.channels)
        print(path)
    rows = sum(len(t.values) for t in tables)
    print(
        f"scored {len(tables)} series, {rows} rows with {detector.name}@{detector.version} "
        f"in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from training.data import load_tables
    from training.job import evaluate_detector

    detector = _load_detector(args)
    tables = [
        t for t in load_tables([Path(p) for p in args.data], "test.csv") if t.labels is not None
    ]
    if not tables:
        raise UserInputError("no labelled test.csv (with a `label` column) under the given paths")
    report = evaluate_detector(detector, tables, with_vus=not args.no_vus)
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for row in report["series"]:
        by_dataset.setdefault(row["dataset"], []).append(row)
    from training.backfill import mean_metrics

    _print_json(
        {
            "model": {"name": detector.name, "version": detector.version},
            "note": "pa_f1_optimistic uses point adjustment and overstates real performance",
            "overall": report["mean"],
            "datasets": {k: mean_metrics(v) for k, v in by_dataset.items()},
            "series": report["series"],
        }
    )
    return 0


def _add_scoring(sub: argparse._SubParsersAction[Any]) -> None:
    for name, func, text in [
        ("score", _score, "score CSV series offline; writes OUT/<dataset>/<series>/scores.csv"),
        ("evaluate", _evaluate, "score labelled test.csv files and print detection metrics (JSON)"),
    ]:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--registry", required=True, help="model registry directory")
        p.add_argument("--model", required=True, help="NAME (production) or NAME@VERSION")
        p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="folders or CSVs")
        p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n]")
        if name == "score":
            p.add_argument("--out", required=True, help="output directory")
            p.add_argument("--split", default="test", choices=["test", "train"], help="which CSVs")
        else:
            p.add_argument("--no-vus", action="store_true", help="skip VUS-PR (tsb-ad bridge)")
        p.set_defaults(func=func)


# --- models --------------------------------------------------------------------------------
def _models(args: argparse.Namespace) -> int:
    registry = Registry(Path(args.registry))
    if args.action == "list":
        versions = registry.versions(args.model)
        if not versions:
            raise UserInputError(f"no versions of {args.model!r} in {args.registry}")
        prod = registry.production(args.model)
        for v in versions:
            print(f"{args.model}@{v}{'  <- production' if v == prod else ''}")
    elif args.action == "show":
        from vaecore.artifact import read_manifest

        spec = f"{args.model}@{args.version}" if args.version else args.model
        resolved = registry.resolve(spec)
        m = read_manifest(resolved.path)
        report = sorted(p.name for p in (resolved.path / "report").glob("*.png"))
        _print_json(
            {
                "model": f"{m.name}@{m.version}",
                "production": registry.production(m.name) == m.version,
                "created_at": m.created_at,
                "channels": len(m.channels),
                "window": m.architecture.window,
                "thresholds": {"window": m.thresholds.window, "method": m.thresholds.method},
                "metrics": m.metrics,
                "training_data": {k: v for k, v in m.training_data.items() if k != "files"},
                "report": [str(resolved.path / "report" / p) for p in report],
            }
        )
    elif args.action == "promote":
        if not args.version:
            raise UserInputError("promote needs --version V")
        registry.promote(args.model, args.version)
        print(f"{args.model}: production -> {args.version}")
    else:
        print(f"{args.model}: production -> {registry.rollback(args.model)}")
    return 0


def _add_models(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("models", help="inspect the registry and move the production alias")
    p.add_argument("action", choices=["list", "show", "promote", "rollback"])
    p.add_argument("--registry", required=True, help="model registry directory")
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--version", help="for show / promote")
    p.set_defaults(func=_models)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    _add_train(sub)
    _add_scoring(sub)
    _add_models(sub)
