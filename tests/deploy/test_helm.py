"""The Helm chart and the sidecar examples: linted, rendered offline, checked against Kubernetes' schemas.

Helm runs in-process (helm-python-sdk binds Helm's Go SDK; no helm binary, no cluster, no network),
and every rendered object is validated with ``kubernetes_validate`` for the oldest Kubernetes the
native-sidecar form needs (1.29) and the newest release it knows.
"""

from __future__ import annotations

import base64
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "wiro-relay"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
SIDECAR_EXAMPLES = sorted((ROOT / "examples" / "sidecar").glob("*.yaml"))
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

RELEASE, NAMESPACE = "relay", "apps"
KUBE_VERSIONS = ("1.29", kubernetes_validate.latest_version())
# Custom resources have no schema in kubernetes_validate; their shape is asserted below instead.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

SECRET_VARIABLES = ("WIRO_API_KEY", "WIRO_API_SECRET", "RELAY_API_TOKENS", "RELAY_SECRET")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "helm.sh/chart",
)

Manifest = dict[str, Any]


def _load_values(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return values


CASES: dict[str, dict[str, Any]] = {"default": {}} | {p.stem: _load_values(p) for p in CI_VALUES}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def _render(chart: helm.Chart, values: dict[str, Any]) -> dict[tuple[str, str], Manifest]:
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    objects: dict[tuple[str, str], Manifest] = {}
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in objects, f"{key} rendered twice"
                objects[key] = doc
    return objects


def _one(objects: dict[tuple[str, str], Manifest], kind: str) -> Manifest:
    found = [o for (k, _), o in objects.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _kinds(objects: dict[tuple[str, str], Manifest]) -> set[str]:
    return {kind for kind, _ in objects}


def _validate(manifest: Manifest) -> None:
    if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
        return
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{manifest['kind']}/{manifest['metadata']['name']} on {version}: {where}: {exc.message}"
            )


def _pod_spec(manifest: Manifest) -> Manifest:
    spec: Manifest = manifest["spec"]["template"]["spec"]
    return spec


def _env_names(container: Manifest) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


# ---- chart metadata, lint and schema ---------------------------------------------------------


def test_chart_versions_follow_the_project() -> None:
    meta = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == project["version"]


def test_ci_values_files_exist() -> None:
    assert {"existing-secret-values", "inline-secret-values"} <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_lint_is_clean_in_strict_mode(case: str, kube_version: str) -> None:
    report = helm.lint(CHART_DIR, CASES[case], strict=True, kube_version=f"v{kube_version}.0")
    assert report["errors"] == []
    # Severity 2 is a warning and 3 an error; 1 (informational, e.g. "icon is recommended") is fine.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_values_pass_the_schema(chart: helm.Chart, case: str) -> None:
    chart.validate_schema(CASES[case])


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"replicaCount": 2}, id="unknown-top-level-key"),
        pytest.param({"image": {"repository": "r", "tga": "x"}}, id="unknown-image-key"),
        pytest.param({"env": {"WIRO_API_KEY": "inline"}}, id="secret-in-env"),
        pytest.param({"env": {"RELAY_API_TOKENS_FILE": "/x"}}, id="secret-file-in-env"),
        pytest.param({"env": {"RELAY_HOST": "127.0.0.1"}}, id="chart-managed-variable-in-env"),
        pytest.param({"secrets": {"relayApiTokens": ["short"]}}, id="short-token"),
        pytest.param({"publicUrl": "relay.example.com"}, id="public-url-without-scheme"),
        pytest.param({"terminationGracePeriodSeconds": 5}, id="grace-shorter-than-shutdown"),
    ],
)
def test_schema_refuses_bad_values(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def test_existing_secret_with_inline_values_is_refused(chart: helm.Chart) -> None:
    values = {"secrets": {"existingSecret": "creds", "wiroApiKey": "inline"}}
    with pytest.raises(helm.HelmError, match="existingSecret"):
        chart.render(values, name=RELEASE, namespace=NAMESPACE)


# ---- every rendered object ---------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_manifests_validate_against_kubernetes(chart: helm.Chart, case: str) -> None:
    objects = _render(chart, CASES[case])
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= _kinds(objects)
    for manifest in objects.values():
        _validate(manifest)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_object_carries_the_standard_labels(chart: helm.Chart, case: str) -> None:
    for manifest in _render(chart, CASES[case]).values():
        labels = manifest["metadata"]["labels"]
        missing = [label for label in STANDARD_LABELS if label not in labels]
        assert not missing, f"{manifest['kind']} lacks {missing}"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


@pytest.mark.parametrize("case", sorted(CASES))
def test_deployment_is_a_single_hardened_pod(chart: helm.Chart, case: str) -> None:
    deployment = _one(_render(chart, CASES[case]), "Deployment")
    spec = deployment["spec"]
    # SQLite: one writer, and the old pod gone before the new one opens the database.
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()

    pod = _pod_spec(deployment)
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}

    (container,) = pod["containers"]
    assert container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": 8787, "protocol": "TCP"}]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]

    probes = {
        name: container[name]["httpGet"] for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["startupProbe"] == {"path": "/healthz", "port": "http"}
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "http"}
    assert probes["readinessProbe"] == {"path": "/readyz", "port": "http"}

    # The root filesystem is read-only: the database and scratch files get volumes of their own.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert {"persistentVolumeClaim", "emptyDir"} & set(volumes[mounts["/data"]])


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_secret_value_reaches_the_environment(chart: helm.Chart, case: str) -> None:
    values = CASES[case]
    objects = _render(chart, values)
    pod = _pod_spec(_one(objects, "Deployment"))
    config = _one(objects, "ConfigMap")["data"]
    (container,) = pod["containers"]

    # Settings come from the ConfigMap only; nothing is read from a Secret into a variable.
    assert "env" not in container
    assert container["envFrom"] == [
        {"configMapRef": {"name": _one(objects, "ConfigMap")["metadata"]["name"]}}
    ]
    assert not set(SECRET_VARIABLES) & set(config)

    inline = values.get("secrets", {})
    secret_strings = [inline.get(k) for k in ("wiroApiKey", "wiroApiSecret", "relaySecret")]
    secret_strings += inline.get("relayApiTokens", [])
    for value in filter(None, secret_strings):
        assert all(value not in str(v) for v in config.values())
        assert value not in yaml.safe_dump(_one(objects, "Deployment"))

    # Each *_FILE variable names a file that the secret volume really projects.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for variable in SECRET_VARIABLES:
        path = config.get(f"{variable}_FILE")
        if path is None:
            continue
        directory, _, filename = path.rpartition("/")
        (name,) = [n for n, m in mounts.items() if m["mountPath"] == directory]
        assert mounts[name]["readOnly"] is True
        assert filename in [item["path"] for item in volumes[name]["secret"]["items"]]


def test_inline_secrets_live_in_the_charts_secret(chart: helm.Chart) -> None:
    values = CASES["inline-secret-values"]
    objects = _render(chart, values)
    data = {k: base64.b64decode(v).decode() for k, v in _one(objects, "Secret")["data"].items()}
    secrets = values["secrets"]
    assert data == {
        "wiro-api-key": secrets["wiroApiKey"],
        "wiro-api-secret": secrets["wiroApiSecret"],
        "relay-api-tokens": ",".join(secrets["relayApiTokens"]),
        "relay-secret": secrets["relaySecret"],
    }
    config = _one(objects, "ConfigMap")["data"]
    assert {f"{v}_FILE" for v in SECRET_VARIABLES} <= set(config)
    pod = _pod_spec(_one(objects, "Deployment"))
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == _one(objects, "Secret")["metadata"]["name"]


def test_existing_secret_is_mounted_with_only_the_keys_it_holds(chart: helm.Chart) -> None:
    values = CASES["existing-secret-values"]
    objects = _render(chart, values)
    assert "Secret" not in _kinds(objects)
    pod = _pod_spec(_one(objects, "Deployment"))
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == values["secrets"]["existingSecret"]
    keys = values["secrets"]["existingSecretKeys"]
    assert [i["key"] for i in volume["secret"]["items"]] == [k for k in keys.values() if k]
    config = _one(objects, "ConfigMap")["data"]
    # Key-only mode: no API secret in the Secret, so no variable points at a file that is not there.
    assert "WIRO_API_SECRET_FILE" not in config
    assert "WIRO_API_KEY_FILE" in config
    # Free-form settings arrive as strings.
    assert config["RELAY_MAX_IN_FLIGHT"] == "8"
    assert config["RELAY_LOG_LEVEL"] == "debug"


def test_without_any_secret_nothing_is_mounted(chart: helm.Chart) -> None:
    objects = _render(chart, {})
    assert "Secret" not in _kinds(objects)
    pod = _pod_spec(_one(objects, "Deployment"))
    assert not [v for v in pod["volumes"] if "secret" in v]
    assert not [k for k in _one(objects, "ConfigMap")["data"] if k.endswith("_FILE")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, f"http://{RELEASE}-wiro-relay.{NAMESPACE}.svc.cluster.local:8787"),
        ({"clusterDomain": "k8s.internal"}, f"http://{RELEASE}-wiro-relay.{NAMESPACE}.svc.k8s.internal:8787"),
        ({"publicUrl": "https://hooks.example.com/"}, "https://hooks.example.com"),
        ({"ingress": {"enabled": True, "host": "relay.example.com"}}, "http://relay.example.com"),
        (CASES["existing-secret-values"], "https://relay.example.com"),
    ],
)
def test_public_url(chart: helm.Chart, values: dict[str, Any], expected: str) -> None:
    config = _one(_render(chart, values), "ConfigMap")["data"]
    assert config["RELAY_PUBLIC_URL"] == expected
    assert config["RELAY_HOST"] == "0.0.0.0"
    assert config["RELAY_DATABASE_URL"] == "sqlite:////data/relay.db"


def test_service_reaches_the_pod(chart: helm.Chart) -> None:
    objects = _render(chart, {})
    service = _one(objects, "Service")
    labels = _one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8787, "targetPort": "http", "protocol": "TCP"}
    ]


def test_ingress_exposes_only_the_callback_path(chart: helm.Chart) -> None:
    objects = _render(chart, CASES["existing-secret-values"])
    ingress = _one(objects, "Ingress")
    service_name = _one(objects, "Service")["metadata"]["name"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "relay.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/callbacks/wiro",
            "pathType": "Prefix",
            "backend": {"service": {"name": service_name, "port": {"name": "http"}}},
        }
    ]
    assert "defaultBackend" not in ingress["spec"]
    assert ingress["spec"]["tls"] == [{"secretName": "relay-example-com-tls", "hosts": ["relay.example.com"]}]


def test_ingress_and_service_monitor_are_off_by_default(chart: helm.Chart) -> None:
    assert not {"Ingress", "ServiceMonitor"} & _kinds(_render(chart, {}))


def test_service_monitor_scrapes_metrics(chart: helm.Chart) -> None:
    objects = _render(chart, CASES["existing-secret-values"])
    monitor = _one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = _one(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+s", endpoint["interval"])


def test_persistence_claim_options(chart: helm.Chart) -> None:
    default = _render(chart, {})
    claim = _one(default, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    data = next(v for v in _pod_spec(_one(default, "Deployment"))["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]

    existing = _render(chart, CASES["existing-secret-values"])
    assert "PersistentVolumeClaim" not in _kinds(existing)
    data = next(v for v in _pod_spec(_one(existing, "Deployment"))["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == "wiro-relay-data"

    no_class = _one(_render(chart, CASES["inline-secret-values"]), "PersistentVolumeClaim")
    assert no_class["spec"]["storageClassName"] == ""

    ephemeral = _render(chart, {"persistence": {"enabled": False}})
    assert "PersistentVolumeClaim" not in _kinds(ephemeral)
    data = next(v for v in _pod_spec(_one(ephemeral, "Deployment"))["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "emptyDir": {}}


def test_image_reference(chart: helm.Chart) -> None:
    def image(values: dict[str, Any]) -> str:
        (container,) = _pod_spec(_one(_render(chart, values), "Deployment"))["containers"]
        return str(container["image"])

    assert image({}) == "wiro-relay:0.1.0"
    assert (
        image({"image": {"repository": "r.example.com/relay", "tag": "1.2.3"}}) == "r.example.com/relay:1.2.3"
    )
    assert image(CASES["existing-secret-values"]).endswith("@sha256:" + "0" * 64)


def test_notes_warn_about_what_will_not_work(chart: helm.Chart) -> None:
    notes = chart.render({}, name=RELEASE, namespace=NAMESPACE)["wiro-relay/templates/NOTES.txt"]
    assert "no Wiro API key" in notes
    assert "no API tokens" in notes
    assert "cannot reach" in notes
    notes = chart.render(CASES["existing-secret-values"], name=RELEASE, namespace=NAMESPACE)[
        "wiro-relay/templates/NOTES.txt"
    ]
    assert "WARNING" not in notes
    assert "https://relay.example.com/callbacks/wiro/" in notes


# ---- the sidecar examples --------------------------------------------------------------------


def _example(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _relay_sidecar(manifests: list[Manifest]) -> tuple[Manifest, Manifest]:
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    pod = _pod_spec(deployment)
    (relay,) = [c for c in pod["initContainers"] if c["name"] == "wiro-relay"]
    return pod, relay


def test_sidecar_examples_exist() -> None:
    assert {p.name for p in SIDECAR_EXAMPLES} == {"pod.yaml", "callbacks.yaml"}


@pytest.mark.parametrize("path", SIDECAR_EXAMPLES, ids=lambda p: p.name)
def test_sidecar_example_validates_against_kubernetes(path: Path) -> None:
    for manifest in _example(path):
        _validate(manifest)


@pytest.mark.parametrize("path", SIDECAR_EXAMPLES, ids=lambda p: p.name)
def test_sidecar_example_is_a_native_hardened_sidecar(path: Path) -> None:
    manifests = _example(path)
    pod, relay = _relay_sidecar(manifests)
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}

    # restartPolicy Always on an init container is what makes it a sidecar (Kubernetes 1.29+).
    assert relay["restartPolicy"] == "Always"
    assert relay["args"] == ["serve"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert probe in relay, probe
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert relay["securityContext"]["readOnlyRootFilesystem"] is True
    assert relay["securityContext"]["allowPrivilegeEscalation"] is False
    assert relay["securityContext"]["capabilities"] == {"drop": ["ALL"]}

    env = {e["name"]: e for e in relay["env"]}
    assert env["RELAY_DATABASE_URL"]["value"] == "sqlite:////data/relay.db"
    assert not set(SECRET_VARIABLES) & set(env), "secrets are passed as files, never as values"
    assert all("valueFrom" not in e for e in relay["env"])
    mounts = {m["mountPath"] for m in relay["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts
    for variable in SECRET_VARIABLES:
        if f"{variable}_FILE" in env:
            assert env[f"{variable}_FILE"]["value"].rpartition("/")[0] in mounts

    # The application in the same pod reaches the relay on loopback.
    (app,) = pod["containers"]
    app_env = {e["name"]: e.get("value") for e in app["env"]}
    assert app_env["RELAY_URL"] == "http://127.0.0.1:8787"


def test_loopback_sidecar_keeps_v1_inside_the_pod() -> None:
    manifests = _example(ROOT / "examples" / "sidecar" / "pod.yaml")
    _, relay = _relay_sidecar(manifests)
    env = {e["name"]: e["value"] for e in relay["env"]}
    assert env["RELAY_HOST"] == "127.0.0.1"
    assert "ports" not in relay
    # The kubelet's HTTP probes connect to the pod IP, which a loopback listener never answers.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "exec" in relay[probe], probe
    assert "/readyz" in " ".join(relay["readinessProbe"]["exec"]["command"])
    assert not {"Service", "Ingress"} & {m["kind"] for m in manifests}


def test_callback_sidecar_exposes_only_the_callback_path() -> None:
    manifests = _example(ROOT / "examples" / "sidecar" / "callbacks.yaml")
    _, relay = _relay_sidecar(manifests)
    env = {e["name"]: e["value"] for e in relay["env"]}
    # Reachable from a Service, so /v1 must require tokens.
    assert env["RELAY_HOST"] == "0.0.0.0"
    assert "RELAY_API_TOKENS_FILE" in env
    assert env["RELAY_PUBLIC_URL"].startswith("https://")
    (ingress,) = [m for m in manifests if m["kind"] == "Ingress"]
    (service,) = [m for m in manifests if m["kind"] == "Service"]
    (rule,) = ingress["spec"]["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/callbacks/wiro", "Prefix")]
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == service["metadata"]["name"]


def test_sidecar_examples_share_one_worked_example_app() -> None:
    pod_manifests = _example(ROOT / "examples" / "sidecar" / "pod.yaml")
    (config_map,) = [m for m in pod_manifests if m["kind"] == "ConfigMap"]
    script = config_map["data"]["app.py"]
    compile(script, "app.py", "exec")
    assert "/v1/tasks" in script
    assert "/v1/events/stream" in script
    assert "last-event-id" in script
    for path in SIDECAR_EXAMPLES:
        pod, _ = _relay_sidecar(_example(path))
        (app_volume,) = [v for v in pod["volumes"] if v["name"] == "app"]
        assert app_volume["configMap"]["name"] == config_map["metadata"]["name"]


def test_deployment_doc_snippet_matches_the_example() -> None:
    """The ready-to-paste sidecar in docs/deployment.md is the one the tests validate."""
    blocks = re.findall(r"```yaml\n(.*?)```", DEPLOYMENT_DOC.read_text(), flags=re.DOTALL)
    snippets = [yaml.safe_load(b) for b in blocks if "restartPolicy: Always" in b]
    assert snippets, "docs/deployment.md has no sidecar snippet"
    _, relay = _relay_sidecar(_example(ROOT / "examples" / "sidecar" / "pod.yaml"))
    assert snippets[0]["initContainers"] == [relay]


# ---- the validator itself ------------------------------------------------------------------------


def test_strict_validation_catches_unknown_fields() -> None:
    """A canary: strict mode must reject what a typo would produce, or the checks above prove nothing."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "readinessprobe": {}}]},
            },
        },
    }
    for version in KUBE_VERSIONS:
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, version, strict=True)
