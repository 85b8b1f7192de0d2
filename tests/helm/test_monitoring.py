"""The dashboard and the alerts query only metrics the operator exports."""

from __future__ import annotations

import json

from .chart import CHART_DIR, MONITORING, render
from .promql import ALLOWED_SERIES, KUBETUNE_METRICS, metric_names

DASHBOARD = json.loads((CHART_DIR / "files" / "dashboard.json").read_text())


def _panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    queries = [(panel["title"], target["expr"])
               for panel in _panels(dashboard) for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            inner = query.removeprefix("label_values(").split(",")[0]
            queries.append((f"${variable['name']}", inner))
    return queries


def test_dashboard_queries_use_only_exported_metrics():
    queries = _queries(DASHBOARD)
    assert len(queries) > 10
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= ALLOWED_SERIES, f"{title}: unknown metrics {names - ALLOWED_SERIES}"


def test_dashboard_shows_what_platform_teams_ask_for():
    used = set().union(*(metric_names(expr) for _, expr in _queries(DASHBOARD)))
    for metric in ("kubetune_jobs", "kubetune_train_loss", "kubetune_tokens_per_second",
                   "kubetune_gpu_seconds_total", "kubetune_eval_metric"):
        assert metric in used, metric
    titles = {panel["title"] for panel in _panels(DASHBOARD)}
    assert {"Jobs by phase", "Training loss per job", "Tokens per second",
            "GPU-hours per namespace", "Eval metrics: finetuned vs baseline"} <= titles
    comparison = next(p for p in DASHBOARD["panels"] if p["title"].startswith("Eval metrics"))
    models = {target["expr"].split('model="')[1].split('"')[0] for target in comparison["targets"]}
    assert models == {"finetuned", "baseline"}


def test_dashboard_panels_have_unique_ids_and_a_prometheus_source():
    ids = [panel["id"] for panel in _panels(DASHBOARD)]
    assert len(ids) == len(set(ids))
    for panel in _panels(DASHBOARD):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_configmap_carries_the_file_for_the_grafana_sidecar():
    configmap = render(MONITORING).one("ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["kubetune.json"]) == DASHBOARD


def test_alerts_cover_failures_pending_errors_and_the_operator_being_down():
    rules = render(MONITORING).one("PrometheusRule")["spec"]["groups"][0]["rules"]
    alerts = {rule["alert"]: rule for rule in rules}
    assert alerts.keys() == {"KubetuneFinetuneJobFailed", "KubetuneJobStuckPending",
                             "KubetuneReconcileErrors", "KubetuneGpuBudgetExhausted",
                             "KubetuneOperatorDown"}
    assert 'reason="BudgetExhausted"' in alerts["KubetuneGpuBudgetExhausted"]["expr"]
    for rule in rules:
        assert metric_names(rule["expr"]) <= KUBETUNE_METRICS | {"up"}, rule["expr"]
    assert 'kind="FinetuneJob"' in alerts["KubetuneFinetuneJobFailed"]["expr"]
    assert 'phase="Pending"' in alerts["KubetuneJobStuckPending"]["expr"]
    assert alerts["KubetuneJobStuckPending"]["for"] == "30m"
    assert 'up{job="kubetune-metrics", namespace="kubetune-system"}' in alerts["KubetuneOperatorDown"]["expr"]
    # Prometheus' own templates survive Helm's.
    assert "{{ $labels.namespace }}" in alerts["KubetuneFinetuneJobFailed"]["annotations"]["summary"]


def test_operator_down_alert_watches_the_job_the_service_monitor_scrapes():
    rendered = render(MONITORING)
    service = rendered.one("Service")["metadata"]["name"]
    rules = rendered.one("PrometheusRule")["spec"]["groups"][0]["rules"]
    down = next(rule for rule in rules if rule["alert"] == "KubetuneOperatorDown")
    # The Prometheus Operator names a ServiceMonitor's job after the Service.
    assert f'job="{service}"' in down["expr"]


def test_alert_thresholds_come_from_values():
    rules = render({"metrics": {"prometheusRule": {"enabled": True, "pendingMinutes": 90,
                                                   "reconcileErrorsThreshold": 12}}}
                   ).one("PrometheusRule")["spec"]["groups"][0]["rules"]
    alerts = {rule["alert"]: rule for rule in rules}
    assert alerts["KubetuneJobStuckPending"]["for"] == "90m"
    assert alerts["KubetuneReconcileErrors"]["expr"].endswith("> 12")


def test_dashboard_shows_budgets_and_jobs_waiting_on_policy_per_namespace():
    panels = {panel["title"]: panel for panel in _panels(DASHBOARD)}
    budget = panels["GPU-hour budget per namespace"]
    used = set().union(*(metric_names(t["expr"]) for t in budget["targets"]))
    assert used == {"kubetune_policy_gpu_hours_used", "kubetune_policy_gpu_hours_remaining"}
    waiting = panels["Jobs waiting on policy"]["targets"][0]["expr"]
    assert metric_names(waiting) == {"kubetune_policy_waiting_jobs"}
    assert "by (namespace, reason)" in waiting


def test_the_listed_metrics_are_what_the_operator_exports():
    from kubetune.operator.metrics import Metrics
    exported = {family.name for family in Metrics().registry.collect()}
    # prometheus-client drops _total from counter family names.
    assert {name.removesuffix("_total") for name in KUBETUNE_METRICS} <= exported
