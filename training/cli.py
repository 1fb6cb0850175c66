"""Sub-commands of the batch side: `train`, `score`, `evaluate`, `models`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, get_args

import structlog

from modelstore.artifact import load_artifact
from modelstore.registry import Registry
from training.job import (
    EXIT_KEPT_OLD,
    SmoothingKernel,
    ThresholdMethod,
    TrainOptions,
    Variance,
    run_training_job,
)
from vaecore.detector import ScoreKind
from vwbase import argtypes
from vwbase.errors import ModelError, UserInputError
from vwbase.threads import apply_torch_threads

log = structlog.get_logger(__name__)


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=False, default=str))


# --- train -------------------------------------------------------------------------------
def _check_train_args(args: argparse.Namespace) -> None:
    """What argparse cannot check alone, before any data is read or any epoch runs."""
    from vaecore import VAEConfig, select_device

    if not args.data and not args.from_topic:
        raise UserInputError("give --data PATH... or --from-topic TOPIC --since DURATION")
    if args.channels and not args.from_topic:
        raise UserInputError("--channels selects the windows of --from-topic; CSVs have theirs")
    if args.channels and len(set(args.channels)) != len(args.channels):
        raise UserInputError(f"--channels names a channel twice: {' '.join(args.channels)}")
    try:
        VAEConfig(n_channels=1, window=args.window)
    except ValueError as exc:
        raise UserInputError(f"--window: {exc}") from None
    select_device(args.device)  # cuda without a CUDA device: refused now, not after training


def _topic_channels(args: argparse.Namespace) -> tuple[list[str] | None, str]:
    """The channels to keep from the topic: --channels, else those of the production model
    being retrained, else None (the topic's own set, when it has only one)."""
    if args.channels:
        return list(args.channels), "--channels"
    from modelstore.artifact import read_manifest

    registry = Registry(args.registry)
    try:
        if registry.production(args.model) is None:
            return None, "the topic"
        resolved = registry.resolve(args.model)
        channels = list(read_manifest(resolved.path).channels)
    except ModelError as exc:
        log.warning("production_model_unreadable", model=args.model, error=str(exc))
        return None, "the topic"
    return channels, f"production model {resolved.name}@{resolved.version}"


def _training_paths(args: argparse.Namespace) -> tuple[list[Path], dict[str, Any] | None]:
    """--data as given, or --from-topic read into CSVs, with the report of what was used."""
    if not args.from_topic:
        return [Path(p) for p in args.data], None
    from training.topic_source import dump_topic_to_csv

    channels, channels_from = _topic_channels(args)
    out, selection = dump_topic_to_csv(
        args.from_topic, args.since, args.bootstrap_servers, channels, channels_from, args.window
    )
    return [out], selection.report()


def _train(args: argparse.Namespace) -> int:
    _check_train_args(args)
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
        smoothing_kernel=args.smoothing_kernel,
        progress=(not args.no_progress and sys.stderr.isatty()) or args.progress,
    )
    paths, topic_report = _training_paths(args)
    try:
        result = run_training_job(paths, args.registry, args.model, opts, args.promote)
    finally:  # the topic's CSV copy (vaewatch-topic-*) is scratch: gone however training ends
        if args.from_topic:
            shutil.rmtree(paths[0], ignore_errors=True)
    if topic_report is not None:
        result.summary.setdefault("training_data", {})["from_topic"] = topic_report
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
            "1D-conv VAE, calibrates thresholds on its smoothed scores, evaluates on labelled "
            "test.csv files when present, writes a report and publishes a new immutable "
            "version. Exit codes: 0 published (and promoted with --promote), 4 the promotion "
            "gate kept the old model, 2 bad input, 3 Kafka unreachable (--from-topic), "
            "1 unexpected failure."
        ),
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", nargs="+", metavar="PATH", help="folders or train.csv files")
    source.add_argument(
        "--from-topic", metavar="TOPIC", type=argtypes.topic, help="train on windows of a topic"
    )
    p.add_argument(
        "--registry",
        required=True,
        type=argtypes.output_directory,
        help="model registry directory (created if missing)",
    )
    p.add_argument("--model", required=True, type=argtypes.model_name, help="model name")
    p.add_argument(
        "--window",
        type=argtypes.positive_int,
        default=TrainOptions.window,
        help=f"model window in time steps, a multiple of 8 (default {TrainOptions.window}); "
        "messages may be longer: they are scored in model-window tiles",
    )
    p.add_argument(
        "--epochs",
        type=argtypes.positive_int,
        default=TrainOptions.epochs,
        help=f"max epochs (default {TrainOptions.epochs})",
    )
    p.add_argument(
        "--seed",
        type=argtypes.seed,
        default=TrainOptions.seed,
        help=f"random seed (default {TrainOptions.seed})",
    )
    _add_fit_and_gate_options(p)
    _add_topic_and_score_options(p)
    p.set_defaults(func=_train)


def _add_fit_and_gate_options(p: argparse.ArgumentParser) -> None:
    """`train`: promotion gate, device, data split, and the fit's and thresholds' options."""
    p.add_argument("--promote", action="store_true", help="move `production` if the gate agrees")
    p.add_argument(
        "--tolerance",
        type=argtypes.non_negative_float,
        default=TrainOptions.tolerance,
        help=f"gate tolerance (default {TrainOptions.tolerance})",
    )
    p.add_argument(
        "--device",
        type=argtypes.device,
        default=TrainOptions.device,
        help=f"auto, cpu or cuda[:n] (default {TrainOptions.device})",
    )
    p.add_argument(
        "--val-fraction",
        type=argtypes.open_fraction,
        default=TrainOptions.val_fraction,
        help=f"held-out tail of each series, between 0 and 1 (default {TrainOptions.val_fraction})",
    )
    p.add_argument(
        "--max-windows",
        type=argtypes.positive_int,
        default=TrainOptions.max_windows,
        help=f"cap on training windows (default {TrainOptions.max_windows})",
    )
    p.add_argument(
        "--n-samples",
        type=argtypes.non_negative_int,
        default=TrainOptions.n_samples,
        help="latent samples L for scoring (0 = mean, the default)",
    )
    p.add_argument(
        "--variance",
        choices=get_args(Variance),
        default=TrainOptions.variance,
        help=f"decoder variance: one per channel, or per point (default {TrainOptions.variance})",
    )
    p.add_argument(
        "--threshold-method", choices=get_args(ThresholdMethod), default=TrainOptions.method
    )
    p.add_argument(
        "--false-alarm-rate",
        type=argtypes.open_fraction,
        default=TrainOptions.risk,
        help="per-step target of the smoothed score, between 0 and 1 "
        f"(default {TrainOptions.risk})",
    )
    p.add_argument("--max-steps", type=argtypes.positive_int, default=None, help=argparse.SUPPRESS)


def _add_topic_and_score_options(p: argparse.ArgumentParser) -> None:
    """`train`: where --from-topic reads, progress, and how the model scores."""
    p.add_argument(
        "--since",
        type=argtypes.duration_seconds,
        default="7d",
        help="with --from-topic: how far back (e.g. 12h, 7d; default 7d)",
    )
    p.add_argument(
        "--channels",
        nargs="+",
        metavar="NAME",
        type=argtypes.channel_name,
        help="with --from-topic: train on these channels (windows may carry more, in any "
        "order; others are skipped). Default: the production model's, else the topic's one set",
    )
    p.add_argument("--bootstrap-servers", default=None, help="with --from-topic (else env)")
    p.add_argument("--progress", action="store_true", help="force the progress bar")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--score-kind",
        choices=get_args(ScoreKind),
        default=TrainOptions.score_kind,
        help="point score: Gaussian negative log-likelihood, or squared reconstruction error "
        f"in normalised units (default {TrainOptions.score_kind})",
    )
    p.add_argument(
        "--smoothing",
        type=argtypes.non_negative_int,
        default=TrainOptions.smoothing,
        help="smoothing length k in steps (the two scales span k and 2k, or the one rolling "
        "mean k); 0 = the dominant period of the training data (125 steps where it has "
        "none), at least one model window (default), 1 = no smoothing",
    )
    p.add_argument(
        "--smoothing-kernel",
        choices=get_args(SmoothingKernel),
        default=TrainOptions.smoothing_kernel,
        help="multiscale: the larger of two triangular kernels of one and two smoothing "
        "lengths, each in units of its own calibrated threshold; mean: one rolling mean, as "
        f"models before 2026-11-26 (default {TrainOptions.smoothing_kernel})",
    )


# --- score / evaluate ----------------------------------------------------------------------
def _load_detector(args: argparse.Namespace) -> Any:
    """The model for `score` / `evaluate`, after setting torch's threads (both start here)."""

    apply_torch_threads()

    resolved = Registry(Path(args.registry)).resolve(args.model)
    return load_artifact(resolved.path, args.device)


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


VUS_SKIPPED = (
    "not computed (vus_pr: null): set VAEWATCH_PEERS_PYTHON to a Python with tsb-ad "
    "installed; `make bench-quality` builds one in benchmarks/.peers-venv"
)


def _vus_available() -> bool:
    """Whether the tsb-ad interpreter is there; says on stderr why VUS-PR is skipped if not."""
    from training.vus import peers_python

    if peers_python() is not None:
        return True
    print(f"vaewatch evaluate: VUS-PR {VUS_SKIPPED}", file=sys.stderr)
    return False


def _vus_note(computed: bool, skipped_on_request: bool) -> str:
    if computed:
        return "TSB-AD's VUS-PR (tsb-ad, data-derived sliding window)"
    return "skipped (--no-vus)" if skipped_on_request else VUS_SKIPPED


def _evaluate(args: argparse.Namespace) -> int:
    from training.data import load_tables
    from training.job import evaluate_detector

    detector = _load_detector(args)
    tables = [
        t for t in load_tables([Path(p) for p in args.data], "test.csv") if t.labels is not None
    ]
    if not tables:
        raise UserInputError("no labelled test.csv (with a `label` column) under the given paths")
    with_vus = not args.no_vus and _vus_available()
    report = evaluate_detector(detector, tables, with_vus=with_vus)
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for row in report["series"]:
        by_dataset.setdefault(row["dataset"], []).append(row)
    from training.backfill import mean_metrics

    _print_json(
        {
            "model": {"name": detector.name, "version": detector.version},
            "note": "pa_f1_optimistic uses point adjustment and overstates real performance",
            "vus_pr": _vus_note(with_vus, args.no_vus),
            "overall": report["mean"],
            "datasets": {k: mean_metrics(v) for k, v in by_dataset.items()},
            "series": report["series"],
        }
    )
    return 0


def _add_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry",
        required=True,
        type=argtypes.existing_directory,
        help="model registry directory",
    )


def _add_scoring(sub: argparse._SubParsersAction[Any]) -> None:
    for name, func, text in [
        ("score", _score, "score CSV series offline; writes OUT/<dataset>/<series>/scores.csv"),
        ("evaluate", _evaluate, "score labelled test.csv files and print detection metrics (JSON)"),
    ]:
        p = sub.add_parser(name, help=text, description=text)
        _add_registry(p)
        p.add_argument(
            "--model",
            required=True,
            type=argtypes.model_spec,
            help="NAME (production) or NAME@VERSION",
        )
        p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="folders or CSVs")
        p.add_argument(
            "--device", type=argtypes.device, default="auto", help="auto, cpu or cuda[:n]"
        )
        if name == "score":
            p.add_argument(
                "--out", required=True, type=argtypes.output_directory, help="output directory"
            )
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
        from modelstore.artifact import read_manifest

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
                "thresholds": m.thresholds.model_dump(exclude={"point"}),
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
    _add_registry(p)
    p.add_argument("--model", required=True, type=argtypes.model_name, help="model name")
    p.add_argument("--version", type=argtypes.version, help="for show / promote")
    p.set_defaults(func=_models)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    _add_train(sub)
    _add_scoring(sub)
    _add_models(sub)
