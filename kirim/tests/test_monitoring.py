"""What ships for Prometheus and Grafana (monitoring/) against what Kirim exports: every metric an
alert or a dashboard query names is one Kirim exports, the reference page lists exactly those, and
promtool checks the rules and runs their unit tests (each alert fires in its scenario, none on a
normal day)."""

import json
import re
import subprocess

import pytest
import yaml
from django.conf import settings
from django.test import Client

from kirim.tests.observing import needs

pytestmark = pytest.mark.django_db

MONITORING = settings.BASE_DIR / "monitoring"
METRIC_NAME = re.compile(r"\bkirim_[a-z_]+\b")
SAMPLE_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("",), "gauge": ("",)}


def exported():
    """{family name: type} of Kirim's metrics, from a scrape."""
    text = Client().get("/metrics").content.decode()
    return dict(re.findall(r"^# TYPE (kirim_\w+) (\w+)$", text, re.MULTILINE))


def sample_names():
    return {name + suffix for name, kind in exported().items() for suffix in SAMPLE_SUFFIXES[kind]}


def dashboard_queries():
    dashboard = json.loads((MONITORING / "kirim-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def alert_expressions():
    rules = yaml.safe_load((MONITORING / "kirim-alerts.yml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def test_every_dashboard_query_names_metrics_kirim_exports():
    names = sample_names()
    for query in dashboard_queries():
        named = set(METRIC_NAME.findall(query))
        assert named, query
        assert named <= names, (query, named - names)


def test_every_alert_names_metrics_kirim_exports():
    names = sample_names()
    for alert, expression in alert_expressions().items():
        named = set(METRIC_NAME.findall(expression))
        assert named and named <= names, (alert, named - names)


def test_the_dashboard_shows_every_metric():
    shown = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    shown_families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in shown}
    assert set(exported()) <= shown_families


def test_the_reference_page_lists_exactly_the_metrics_kirim_exports():
    page = (settings.BASE_DIR / "docs" / "reference" / "metrics.md").read_text()
    listed = set(re.findall(r"^\| `(kirim_\w+)`", page, re.MULTILINE))
    assert listed == set(exported())


def test_promtool_checks_the_rules_and_each_alert_fires_in_its_scenario_and_not_on_a_normal_day():
    promtool = needs("promtool")
    checked = subprocess.run([promtool, "check", "rules", "kirim-alerts.yml"], cwd=MONITORING, capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "kirim-alerts.test.yml"], cwd=MONITORING,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert has a scenario where it fires, and is quiet on the normal day.
    scenarios = yaml.safe_load((MONITORING / "kirim-alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in scenarios for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for case in scenarios[0]["alert_rule_test"] if not case["exp_alerts"]}
    assert fired == quiet == set(alert_expressions())
