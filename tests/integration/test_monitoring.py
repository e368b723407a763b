"""The monitoring the deployment ships (issue 9, point 12): deploy/prometheus/alerts.yml passes ``promtool check
rules`` and its unit tests (``promtool test rules``), the Prometheus configuration passes ``promtool check
config``, a running gateway's scrape passes ``promtool check metrics`` (Prometheus naming conventions), and the
Grafana dashboard and the alert rules query only metrics that a running gateway exports.

promtool is built from the Go module proxy by ``scripts/promtool.sh`` (the test command runs it; cached under
infra/promtool/bin). Without it these tests skip locally and fail in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.pipeline import Submission
from gateway.simulators import aler_arrears_message
from tests.conftest import EMBEDDED, Backends
from tests.e2e.test_f1_microcredit_referral import tenant

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "gateway.json"
_METRIC = re.compile(r"\b(gateway_[a-z0-9_]+)\b")
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "gauge": ("",)}


@pytest.fixture(scope="module")
def promtool() -> Path:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool") or str(ROOT / "infra/promtool/bin/promtool")
    if not Path(found).is_file():
        message = "promtool is missing: run scripts/promtool.sh (the test command does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


def run(promtool: Path, *args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          timeout=120, check=False)


def test_alert_rules_pass_promtool_check(promtool: Path) -> None:
    result = run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout + result.stderr


def test_alert_rules_unit_tests_pass(promtool: Path) -> None:
    """alerts.test.yml: each alert fires when it should and stays silent when it should (an idle audit log
    with everything signed raises no checkpoint alert)."""
    result = run(promtool, "test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_configuration_passes_promtool_check(promtool: Path, tmp_path: Path) -> None:
    """The compose Prometheus configuration, with its rule file where the container mounts it taken from here."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
async def running(settings_for: Callable[[Backends], Any], clients: tuple[PartnerClient, ...]) -> AsyncIterator[
        Gateway]:
    """A started gateway serving metrics, with one message through it so that labelled metrics have samples."""
    settings = (await settings_for(EMBEDDED)).model_copy(update={"metrics_port": 0, "metrics_sample_seconds": 0.2})
    gateway = build(settings, clients=clients)
    await gateway.start()
    try:
        await gateway.intake.submit(Submission(
            sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(tenant(31), "m-monitoring")),
            content_type="application/json", request_id="req-monitoring"))
        await gateway.relay.drain()
        yield gateway
    finally:
        await gateway.stop()


async def scrape(gateway: Gateway) -> str:
    assert gateway.metrics_server is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{gateway.metrics_server.port}/metrics", timeout=10)
    response.raise_for_status()
    return response.text


def exported_names(text: str) -> set[str]:
    """Every sample name a scrape can hold: each family's own, whether or not it has samples yet."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def families(text: str) -> dict[str, set[str]]:
    """Sample names by metric family, for the families the gateway defines (``gateway_``)."""
    return {family.name: {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
            for family in text_string_to_metric_families(text)
            if family.name.startswith("gateway_") and not family.name.endswith("_created")}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_queries() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


async def test_the_scrape_follows_prometheus_naming_conventions(promtool: Path, running: Gateway) -> None:
    text = await scrape(running)
    assert "gateway_messages_total" in text
    result = run(promtool, "check", "metrics", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).strip() == ""  # not one lint remark


async def test_dashboard_and_alerts_query_only_metrics_the_gateway_exports(running: Gateway) -> None:
    exported = exported_names(await scrape(running))
    queries = dashboard_queries() + alert_queries()
    used = {name for query in queries for name in _METRIC.findall(query)}
    assert used, "no gateway metric found in the queries"
    assert used <= exported, f"queried but not exported: {sorted(used - exported)}"
    # every panel and rule reads a gateway metric (``up`` is Prometheus's own)
    for query in queries:
        assert _METRIC.search(query) or query.startswith(("up{", "sum by (job) (up{")), query
    # and every metric the gateway exports is on the dashboard
    shown = {name for query in dashboard_queries() for name in _METRIC.findall(query)}
    missing = [family for family, names in families(await scrape(running)).items() if not names & shown]
    assert missing == []


def test_dashboard_reads_the_provisioned_data_source() -> None:
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8"))
    uid = source["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
        assert panel["targets"], panel["title"]
        assert all(target["datasource"]["uid"] == uid for target in panel["targets"])
