"""deploy/k8s: every manifest valid against Kubernetes' own schemas (kubernetes-validate, offline,
strict: no unknown fields), and the pieces fit together: probes on the gRPC health service,
a GPU per replica, the /models volume, a headless Service, a PDB and an HPA on queue depth."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceshield.cli.serve import MODEL_SET_ENV
from faceshield.engine.modelsets.store import ENV_PATH
from faceshield.service.settings import Settings

kv = pytest.importorskip("kubernetes_validate")
yaml = pytest.importorskip("yaml")

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise (gRPC probes are GA since 1.27)


def manifests() -> dict[str, dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            out[doc["kind"]] = doc
    return out


@pytest.mark.parametrize("version", [VERSION, kv.latest_version()])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version):
    docs = manifests()
    assert set(docs) == {
        "Namespace",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for doc in docs.values():
        kv.validate(doc, version, strict=True)


def test_a_broken_manifest_is_caught():
    """The check above can fail: an unknown field and a wrong type are refused."""
    deployment = manifests()["Deployment"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, VERSION, strict=True)
    deployment = manifests()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["portt"] = 1
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, VERSION, strict=True)


def test_the_pieces_fit_together():
    docs = manifests()
    deployment, service, pdb, hpa = (
        docs[k] for k in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler")
    )
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert int(env["FACESHIELD_PORT"]) == grpc_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == grpc_port  # grpc.health.v1, the server's overall status
    assert container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"]["limits"]["nvidia.com/gpu"]
    known = set(Settings.ENV.values()) | {MODEL_SET_ENV, ENV_PATH}
    assert set(env) <= known, set(env) - known
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["models"] == env[ENV_PATH] == "/models"
    claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "models")["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    grace = int(env["FACESHIELD_DRAIN_SECONDS"]) + int(env["FACESHIELD_GRACE_SECONDS"])
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["selector"] == labels
    assert pdb["spec"]["selector"]["matchLabels"] == labels == deployment["spec"]["selector"]["matchLabels"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "faceshield_queue_depth"
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_the_queue_depth_metric_is_the_one_the_server_exports():
    from prometheus_client import generate_latest

    from faceshield.service.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    metrics.depth.set(3)
    assert b"faceshield_queue_depth 3.0" in generate_latest(metrics.registry)
