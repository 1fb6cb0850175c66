"""`make run`: the whole product on embedded defaults, start to finish, in one command.

1. start the embedded Kafka-compatible broker (unless VAEWATCH_KAFKA_BOOTSTRAP_SERVERS names one);
2. train a model on the bundled sample if the registry has no production model;
3. start `vaewatch worker` as a child process (exactly what production runs);
4. replay the sample's test series into the input topic, plus a few malformed messages;
5. wait until every window came out, then print a summary table and exit 0.

Everything it starts is stopped on the way out, Ctrl-C included: no stray broker process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson

from kafkaio.records import InRecord
from modelstore.registry import Registry
from schemas.series_csv import SeriesTable
from vaewatch.process import StreamTopics, start_worker, worker_env
from vwbase.errors import VaewatchError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample" / "smd"
MODEL = "default"
WINDOW = 128
STRIDE = 8
BAD_MESSAGES = [
    b"this is not json",
    b'{"schema_version": 2, "window_id": "x", "series_id": "x"}',
    b'{"schema_version": 1, "window_id": "w", "series_id": "s", "start": "2026-11-24T03:00:00Z",'
    b' "interval_ms": 1000, "channels": ["a"], "values": [[NaN]]}',
]


@contextmanager
def _broker() -> Iterator[str]:
    external = os.environ.get("VAEWATCH_KAFKA_BOOTSTRAP_SERVERS")
    if external:
        print(f"using the Kafka cluster at {external}")
        yield external
        return
    from worker.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        print(f"embedded broker (Tansu) on {broker.bootstrap}, pid {broker.pid}")
        yield broker.bootstrap


def _vaewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "vaewatch", *args]


def _ensure_model(registry: Path) -> str:
    reg = Registry(registry)
    current = reg.production(MODEL)
    if current is not None:
        print(f"registry {registry} already serves {MODEL}@{current}: not retraining")
        return current
    print(f"no production model in {registry}: training {MODEL!r} on {SAMPLE.relative_to(REPO)}")
    cmd = _vaewatch("train", "--data", str(SAMPLE), "--registry", str(registry), "--model", MODEL)
    subprocess.run([*cmd, "--promote", "--progress"], check=True, stdout=subprocess.DEVNULL)
    version = reg.production(MODEL)
    if version is None:
        raise VaewatchError("training finished but no production model was published")
    return version


@contextmanager
def _worker(bootstrap: str, registry: Path, topics: StreamTopics, log: Path) -> Iterator[None]:
    metrics = {"VAEWATCH_METRICS_PORT": os.environ.get("VAEWATCH_METRICS_PORT", "0")}
    proc = start_worker(worker_env(bootstrap, registry, topics, MODEL, metrics), log)
    print(f"worker started (pid {proc.pid}), logs in {log.relative_to(REPO)}")
    try:
        _wait_until_assigned(proc, log)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_assigned(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    """Replay only once the worker has joined its group, so latency means processing time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise VaewatchError(f"the worker exited with {proc.returncode}: {tail}")
        if b'"partitions_assigned"' in log.read_bytes():
            return
        time.sleep(0.2)
    raise VaewatchError(f"the worker did not join its consumer group within {timeout_s:.0f} s")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def episode_rows(episodes: list[bytes], table: SeriesTable) -> list[tuple[str, str]]:
    """Episodes opened/resolved, and incident-level precision/recall against the labels.

    An episode spans [opened_at, last_anomalous_at] in data time; it matches a labelled
    incident (a run of label-1 rows) that it overlaps, give or take one window (the
    rolling mean lags, an episode opens a window or two into an incident).
    """
    from schemas.series_csv import parse_timestamps
    from training.metrics import incident_precision_recall, segments

    spans: dict[str, tuple[int, int]] = {}
    resolved = set()
    for raw in episodes:
        d = orjson.loads(raw)
        if d["status"] == "resolved":
            resolved.add(d["episode_id"])
        spans[d["episode_id"]] = (_ms(d["opened_at"]), _ms(d["last_anomalous_at"]))
    times, interval = parse_timestamps(table.timestamps)
    ms = [int(t.timestamp() * 1000) for t in times]
    labels = table.labels if table.labels is not None else np.zeros(len(ms))
    incidents = [(ms[a], ms[b - 1] + interval) for a, b in segments(labels)]
    precision, recall = incident_precision_recall(
        list(spans.values()), incidents, slack=WINDOW * interval
    )
    found = round((recall or 0) * len(incidents))
    return [
        ("episodes opened / resolved", f"{len(spans)} / {len(resolved)} (alert episodes, §3.5)"),
        (
            "incident precision",
            f"{_fmt(precision)} ({round((precision or 0) * len(spans))}/{len(spans)} episodes "
            "on a labelled incident)",
        ),
        ("incident recall", f"{_fmt(recall)} ({found}/{len(incidents)} labelled incidents)"),
    ]


def _episode_lines(episodes: list[bytes], most: int = 12) -> str:
    """What the worker published on the episodes topic, as `vaewatch tail` prints it."""
    from worker.tail import format_line

    lines = [format_line(raw) for raw in episodes[:most]]
    more = f"\n ... and {len(episodes) - most} more" if len(episodes) > most else ""
    return (
        "\n alert episodes published (as `vaewatch tail` prints them):\n "
        + "\n ".join(lines)
        + more
    )


def _ms(text: str) -> int:
    from schemas.messages import parse_start

    return int(parse_start(text).timestamp() * 1000)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def summarise(
    inputs: list[InRecord],
    corrected: list[InRecord],
    events: list[InRecord],
    dead: list[InRecord],
    table: SeriesTable,
) -> list[tuple[str, str]]:
    from worker.replay import expected_window_labels

    produced = {
        orjson.loads(r.value)["window_id"]: r.timestamp_ms for r in inputs if r.key != b"bad"
    }
    docs = [orjson.loads(r.value) for r in corrected]
    latency = [
        (r.timestamp_ms - produced[d["window_id"]]) / 1000
        for r, d in zip(corrected, docs, strict=True)
        if d["window_id"] in produced
    ]
    order = sorted(docs, key=lambda d: d["start"])
    predicted = np.array([d["is_anomaly"] for d in order], dtype=bool)
    truth = expected_window_labels(table, WINDOW, STRIDE).astype(bool)[: len(predicted)]
    tp = int((predicted & truth).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    span = (max(r.timestamp_ms for r in corrected) - min(produced.values())) / 1000
    points = sum(len(d["corrected"]) for d in docs)
    return [
        ("windows in", f"{len(produced)} valid + {len(inputs) - len(produced)} malformed"),
        ("corrected windows out", str(len(corrected))),
        ("anomaly events out", str(len(events))),
        ("dead letters", str(len(dead))),
        ("points replaced", f"{points} (missing or flagged)"),
        (
            "window precision",
            f"{precision:.2f} ({tp}/{int(predicted.sum())} events on labelled windows)",
        ),
        ("window recall", f"{recall:.2f} ({tp}/{int(truth.sum())} labelled windows)"),
        (
            "drain rate",
            f"{len(corrected) / max(span, 1e-9):.0f} windows/s (the burst, first produce to "
            "last output)",
        ),
        (
            "latency p50 / p99",
            f"{_percentile(latency, 50) * 1000:.0f} / {_percentile(latency, 99) * 1000:.0f} ms",
        ),
    ]


def _table(rows: list[tuple[str, str]], report: Path) -> str:
    width = max(len(k) for k, _ in rows)
    lines = ["=" * 64, " vaewatch make run: summary", "=" * 64]
    lines += [f" {key:<{width}}  {value}" for key, value in rows]
    lines += ["-" * 64, f" training report (PNG): {report}", "=" * 64]
    return "\n".join(lines)


README_BEGIN, README_END = "<!-- make-run:begin -->", "<!-- make-run:end -->"


def update_readme(
    table: str, seconds: float, readme: Path = REPO / "README.md", trained: bool = True
) -> None:
    """Put this run's summary, and the conditions it ran under, between the README's markers."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise VaewatchError(f"{readme} has no {README_BEGIN} ... {README_END} block")
    load = os.getloadavg()[0]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = (
        f"{README_BEGIN}\n"
        f"Generated by `make run-readme` on {when}: {os.cpu_count()} cores, CPU only, load "
        f"average {load:.1f} at the end (the machine was {'shared' if load > 1.5 else 'quiet'}), "
        f"{seconds:.0f} s for the whole run "
        f"{'including training' if trained else '(the model was already trained)'}."
        f"\n\n```\n{table}\n```\n"
        f"{README_END}"
    )
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + block + tail)


def run(update: bool = False) -> int:
    """The demo; with `update`, its summary replaces the README's make-run block."""
    started = time.monotonic()
    from kafkaio.client import read_topic_records, read_topic_values
    from schemas.series_csv import find_series_files, read_series_csv
    from worker.replay import replay_series
    from worker.settings import settings_from_cli

    registry = Path(os.environ.get("VAEWATCH_REGISTRY", REPO / "models"))
    run_dir = REPO / "runs" / time.strftime("%Y%m%dT%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    topics = StreamTopics(
        f"sensor-windows-{tag}",
        f"anomaly-events-{tag}",
        f"corrected-windows-{tag}",
        f"sensor-windows-{tag}.dlq",
        f"vaewatch-demo-{uuid.uuid4().hex[:8]}",
        f"anomaly-episodes-{tag}",
    )
    trained = Registry(registry).production(MODEL) is None
    version = _ensure_model(registry)
    [table] = [read_series_csv(p) for p in find_series_files([SAMPLE], "test.csv")]
    with _broker() as bootstrap, _worker(bootstrap, registry, topics, run_dir / "worker.log"):
        settings = settings_from_cli({"kafka_bootstrap_servers": bootstrap})
        sent = replay_series(
            settings, [table], topics.input, window=WINDOW, stride=STRIDE, progress=True
        )
        from kafkaio.client import make_producer

        producer = make_producer(settings)
        for raw in BAD_MESSAGES:
            producer.send(topics.input, key=b"bad", value=raw)
        producer.flush(30)
        producer.close()
        print(f"replayed {sent} windows + {len(BAD_MESSAGES)} malformed messages; waiting")
        corrected = read_topic_records(settings, topics.corrected, sent, timeout_s=120)
        if len(corrected) < sent:
            raise VaewatchError(
                f"only {len(corrected)} of {sent} corrected windows arrived in 120 s"
            )
        dead = read_topic_records(settings, topics.dlq, len(BAD_MESSAGES), timeout_s=30)
        anomalous = sum(orjson.loads(r.value)["is_anomaly"] for r in corrected)
        events = read_topic_records(settings, topics.events, anomalous, timeout_s=30)
        inputs = read_topic_records(settings, topics.input, sent + len(BAD_MESSAGES), timeout_s=30)
        episodes = list(read_topic_values(settings, topics.episodes, since_ms=0))
        rows = summarise(inputs, corrected, events, dead, table)
        rows[3:3] = episode_rows(episodes, table)
    report = registry / MODEL / version / "report"
    summary = _table(rows, report.relative_to(REPO) if report.is_relative_to(REPO) else report)
    print("\n" + summary)
    print(_episode_lines(episodes))
    if update:
        update_readme(summary, time.monotonic() - started, trained=trained)
        print("README.md: make run block updated")
    return 0


def main() -> int:
    update = "--update-readme" in sys.argv[1:]
    try:
        return run(update)
    except VaewatchError as exc:
        print(f"make run: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except subprocess.CalledProcessError as exc:
        print(f"make run: error: `vaewatch {exc.cmd[3]}` exited {exc.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmake run: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
