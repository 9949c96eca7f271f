"""The Kubernetes manifests agree with the app: port, probe paths, settings names, graceful
termination, resources, and the objects that refer to each other. No cluster runs here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from imovsp.server import create_app
from imovsp.settings import Settings, variable_names

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
WORKER_MB = 280  # one worker with the model loaded: ~270 MB in benchmarks/soak.py


def manifests() -> dict[str, dict[str, Any]]:
    """Every object of the directory by kind (each kind appears once)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert {"apiVersion", "kind"} <= set(doc), path
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return manifests()


@pytest.fixture(scope="module")
def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * {"Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}[unit]


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret"} <= set(manifests())


def test_the_container_port_is_the_images_and_the_apps(container: dict[str, Any]) -> None:
    (port,) = container["ports"]
    exposed = re.search(r"^EXPOSE (\d+)$", dockerfile(), re.M)
    image_port = re.search(r"\bPORT=(\d+)", dockerfile())
    assert exposed
    assert image_port
    assert port["containerPort"] == int(exposed.group(1)) == int(image_port.group(1))
    assert env_of(container)["PORT"] == str(port["containerPort"])
    assert "command" not in container
    assert "args" not in container


def test_probes_ask_routes_the_app_has(container: dict[str, Any]) -> None:
    paths = create_app(Settings()).openapi()["paths"]
    gets = {path for path, operations in paths.items() if "get" in operations}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    names = {p["name"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in gets
        assert container[probe]["httpGet"]["port"] in names


def test_every_variable_is_a_setting_with_a_valid_value(
    container: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = {n for field in Settings.model_fields for n in variable_names(field).split(" or ")}
    if "database_url" not in Settings.model_fields:  # comes with the prediction log branch
        known.add("IMOVSP_DATABASE_URL")
    env = env_of(container)
    assert set(env) <= known, set(env) - known
    for name, value in env.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert str(settings.models_dir) == env["IMOVSP_MODELS_DIR"]
    assert settings.reload_interval > 0  # pods follow the shared volume's CURRENT


def test_secrets_come_from_the_documented_secret(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    secret = objects["Secret"]
    refs = [v["secretKeyRef"] for v in env_of(container).values() if isinstance(v, dict)]
    assert {r["name"] for r in refs} == {secret["metadata"]["name"]}
    assert {r["key"] for r in refs} == set(secret["stringData"])
    names = {e["name"] for e in container["env"] if "valueFrom" in e}
    assert {"IMOVSP_DATABASE_URL", "IMOVSP_ADMIN_TOKEN"} <= names


def test_termination_waits_for_requests_in_flight(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    graceful = float(env_of(container).get("IMOVSP_GRACEFUL_TIMEOUT", Settings().graceful_timeout))
    assert pod["terminationGracePeriodSeconds"] > float(command[1]) + graceful


def test_resources_hold_the_workers(container: dict[str, Any]) -> None:
    workers = int(env_of(container)["IMOVSP_WORKERS"])
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    # With more than one worker, the supervisor process holds a model's worth of memory too.
    resident = WORKER_MB * (workers + (workers > 1))
    assert mebibytes(requests["memory"]) >= resident
    # A reload holds two models for a moment.
    assert mebibytes(limits["memory"]) >= resident + WORKER_MB
    assert cores(requests["cpu"]) <= cores(limits["cpu"])


def test_the_objects_point_at_each_other(objects: dict[str, dict[str, Any]]) -> None:
    deployment, service = objects["Deployment"], objects["Service"]
    hpa, pvc = objects["HorizontalPodAutoscaler"], objects["PersistentVolumeClaim"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == pod_labels
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    models = volumes[mounts[env_of(container)["IMOVSP_MODELS_DIR"]]]
    assert models["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]


def test_the_pod_runs_as_the_images_user(objects: dict[str, dict[str, Any]]) -> None:
    uid = re.search(r"useradd [^&]*--uid (\d+)", dockerfile())
    assert uid
    security = objects["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsUser"] == int(uid.group(1))
    assert security["runAsNonRoot"] is True
