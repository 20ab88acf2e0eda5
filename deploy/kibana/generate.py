#!/usr/bin/env python3
"""Writes deploy/kibana/sluice.ndjson: Kibana saved objects for the events Sluice writes.

One data view over the `logs-sluice-*` data streams and four dashboards that mirror the
runbook (production overview, API per endpoint, business activity, security), built from Lens
visualizations. The NDJSON is checked in so operators import it without Python:

    Kibana → Stack Management → Saved objects → Import, or
    curl -X POST "$KIBANA/api/saved_objects/_import?overwrite=true" \\
         -H 'kbn-xsrf: true' --form file=@deploy/kibana/sluice.ndjson

Edit this file, not the NDJSON, then run it (`python3 deploy/kibana/generate.py`).
scripts/validate-deploy checks that the NDJSON is what this script writes and that every field
it names exists in schemas/json/log_event.v1.schema.json.

Object ids are derived from names (uuid5), so re-importing overwrites instead of duplicating.
Needs Kibana 8.9 or later (the Lens `formBased` datasource and these migration versions).
"""

import json
import sys
import uuid
from pathlib import Path

OUT = Path(__file__).resolve().parent / "sluice.ndjson"

# Kibana migrates objects up from these versions on import; older Kibanas refuse newer ones.
CORE_MIGRATION_VERSION = "8.8.0"
TYPE_MIGRATION_VERSION = {"index-pattern": "8.0.0", "lens": "8.9.0", "dashboard": "8.9.0"}
# Panel schema version stored inside a dashboard's panelsJSON.
PANEL_VERSION = "8.9.0"

NAMESPACE = uuid.UUID("6f1c2a4e-3b0d-4c8e-9a57-5a1ce0000000")
DATA_VIEW_ID = "sluice-logs"
DATA_VIEW_TITLE = "logs-sluice-*"
RECORDS = "___records___"  # Lens' pseudo-field for "count of documents"

# KQL snippets shared by several panels. Field names are ECS names from the event schema.
HTTP_REQUEST = "http.response.status_code >= 100"
HTTP_5XX = "http.response.status_code >= 500"
LOGIN = 'url.path : "/api/auth/login"'
FAILED_LOGIN = (
    '(url.path : "/api/auth/login" and http.response.status_code >= 400 '
    "and http.response.status_code < 500) "
    'or message : "Failed password" or message : "authentication failure"'
)
SCANNER_AGENTS = (
    "user_agent.original : (*sqlmap* or *Nikto* or *nikto* or *Nmap* or *nmap* or *masscan* "
    "or *zgrab* or *gobuster* or *DirBuster* or *nuclei* or *WPScan* or *wpscan*)"
)


def oid(kind, name):
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def kql(query):
    return {"query": query, "language": "kuery"}


# ---- Lens columns -------------------------------------------------------------------------


def date_histogram():
    return {
        "label": "@timestamp",
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": "@timestamp",
        "isBucketed": True,
        "scale": "interval",
        "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
    }


def count(label, filter_query=None):
    col = {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": "count",
        "isBucketed": False,
        "scale": "ratio",
        "sourceField": RECORDS,
        "params": {"emptyAsNull": True},
    }
    if filter_query:
        col["filter"] = kql(filter_query)
    return col


# Lens data type of a bucketed field, by its index kind in schemas/src/fields.rs.
TERM_DATA_TYPES = {"http.response.status_code": "number", "client.ip": "ip"}
# `order_by` value meaning "rank by document count" without showing the count as a column.
BY_COUNT = "count"


def terms(field, size, order_by, label=None, other=False):
    """Top `size` values of `field`, ranked by column `order_by` or, with BY_COUNT, by count."""
    if order_by == BY_COUNT:
        order = {"type": "custom"}
        order_agg = {
            "label": "Count of records",
            "dataType": "number",
            "operationType": "count",
            "isBucketed": False,
            "scale": "ratio",
            "sourceField": RECORDS,
            "params": {"emptyAsNull": True},
        }
    else:
        order, order_agg = {"type": "column", "columnId": order_by}, None
    params = {
        "size": size,
        "orderBy": order,
        "orderDirection": "desc",
        "otherBucket": other,
        "missingBucket": False,
        "parentFormat": {"id": "terms"},
    }
    if order_agg:
        params["orderAgg"] = order_agg
    return {
        "label": label or f"Top {size} values of {field}",
        "customLabel": label is not None,
        "dataType": TERM_DATA_TYPES.get(field, "string"),
        "operationType": "terms",
        "scale": "ordinal",
        "sourceField": field,
        "isBucketed": True,
        "params": params,
    }


def filters(named_queries):
    return {
        "label": "Filters",
        "dataType": "string",
        "operationType": "filters",
        "scale": "ordinal",
        "isBucketed": True,
        "params": {"filters": [{"input": kql(q), "label": name} for name, q in named_queries]},
    }


def percentile(field, pct, label):
    return {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": "percentile",
        "sourceField": field,
        "isBucketed": False,
        "scale": "ratio",
        "params": {"percentile": pct},
    }


def unique_count(field, label):
    return {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": "unique_count",
        "sourceField": field,
        "isBucketed": False,
        "scale": "ratio",
        "params": {"emptyAsNull": True},
    }


def ratio_formula(col_id, label, numerator, denominator):
    """A Lens formula `count(kql=numerator) / count(kql=denominator)` as a percentage.

    Lens persists a formula as the formula column plus the helper columns it compiles to (two
    filtered counts and a math column); all four are returned, keyed by column id.
    """
    formula = f"count(kql='{numerator}') / count(kql='{denominator}')"
    x0, x1, x2 = f"{col_id}X0", f"{col_id}X1", f"{col_id}X2"
    part = f"Part of {label}"
    helper = {"customLabel": True, "params": {"emptyAsNull": False}}
    return {
        col_id: {
            "label": label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "formula",
            "isBucketed": False,
            "scale": "ratio",
            "params": {
                "formula": formula,
                "isFormulaBroken": False,
                "format": {"id": "percent", "params": {"decimals": 2}},
            },
            "references": [x2],
        },
        x0: {**count(part, numerator), **helper},
        x1: {**count(part, denominator), **helper},
        x2: {
            "label": part,
            "customLabel": True,
            "dataType": "number",
            "operationType": "math",
            "isBucketed": False,
            "scale": "ratio",
            "params": {
                "tinymathAst": {
                    "type": "function",
                    "name": "divide",
                    "args": [x0, x1],
                    "location": {"min": 0, "max": len(formula)},
                    "text": formula,
                }
            },
            "references": [x0, x1],
        },
    }


# ---- Lens visualizations ------------------------------------------------------------------

LAYER = "layer1"


def column_order(columns):
    """Breakdowns, then the date histogram, then metrics: Lens nests bucket aggregations in
    this order, so "top 10 services" is computed over the whole time range rather than per
    interval (which would change the legend from bar to bar)."""

    def rank(column_id):
        col = columns[column_id]
        if not col["isBucketed"]:
            return 2
        return 1 if col["operationType"] == "date_histogram" else 0

    return sorted(columns, key=rank)


def lens(title, vis_type, columns, visualization, description="", query=""):
    """One Lens object over the Sluice data view with a single form-based layer."""
    layer_ref = f"indexpattern-datasource-layer-{LAYER}"
    references = [{"type": "index-pattern", "id": DATA_VIEW_ID, "name": layer_ref}]
    return {
        "type": "lens",
        "id": oid("lens", title),
        "attributes": {
            "title": title,
            "description": description,
            "visualizationType": vis_type,
            "state": {
                "datasourceStates": {
                    "formBased": {
                        "layers": {
                            LAYER: {
                                "columns": columns,
                                "columnOrder": column_order(columns),
                                "incompleteColumns": {},
                            }
                        }
                    }
                },
                "visualization": visualization,
                "query": kql(query),
                "filters": [],
                "adHocDataViews": {},
                "internalReferences": [],
            },
        },
        "references": references,
    }


def xy(title, series_type, x, ys, split=None, columns=None, description="", query=""):
    """A time or category chart: x accessor, y accessors, optional split (breakdown)."""
    layer = {
        "layerId": LAYER,
        "layerType": "data",
        "seriesType": series_type,
        "xAccessor": x,
        "accessors": ys,
    }
    if split:
        layer["splitAccessor"] = split
    visualization = {
        "preferredSeriesType": series_type,
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "layers": [layer],
    }
    return lens(title, "lnsXY", columns, visualization, description, query)


def table(title, columns, description="", query=""):
    visualization = {
        "layerId": LAYER,
        "layerType": "data",
        "columns": [{"columnId": c} for c in columns if c not in _helpers(columns)],
    }
    return lens(title, "lnsDatatable", columns, visualization, description, query)


def metric(title, column_id, column, description="", query=""):
    visualization = {"layerId": LAYER, "layerType": "data", "metricAccessor": column_id}
    return lens(title, "lnsMetric", {column_id: column}, visualization, description, query)


def _helpers(columns):
    """Columns another column references: a formula's internals, never shown on their own."""
    return {ref for col in columns.values() for ref in col.get("references", [])}


# ---- dashboards ---------------------------------------------------------------------------


def dashboard(title, description, panels, query=""):
    """panels: list of (lens object, width, height) laid out left to right on a 48-wide grid."""
    panels_json, references = [], []
    x = y = row_height = 0
    for i, (vis, w, h) in enumerate(panels):
        if x + w > 48:
            x, y, row_height = 0, y + row_height, 0
        index = str(i + 1)
        panels_json.append(
            {
                "version": PANEL_VERSION,
                "type": "lens",
                "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
                "panelIndex": index,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{index}",
            }
        )
        references.append({"type": "lens", "id": vis["id"], "name": f"panel_{index}"})
        x, row_height = x + w, max(row_height, h)
    search_source = {"query": kql(query), "filter": []}
    return {
        "type": "dashboard",
        "id": oid("dashboard", title),
        "attributes": {
            "title": title,
            "description": description,
            "panelsJSON": json.dumps(panels_json, separators=(",", ":")),
            "optionsJSON": json.dumps(
                {"useMargins": True, "syncColors": True, "hidePanelTitles": False},
                separators=(",", ":"),
            ),
            "timeRestore": True,
            "timeFrom": "now-24h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 60000},
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps(search_source, separators=(",", ":"))
            },
        },
        "references": references,
    }


def data_view():
    # event.duration is in nanoseconds (ECS); show it in milliseconds everywhere.
    formats = {
        "event.duration": {
            "id": "duration",
            "params": {
                "inputFormat": "nanoseconds",
                "outputFormat": "asMilliseconds",
                "outputPrecision": 1,
            },
        }
    }
    return {
        "type": "index-pattern",
        "id": DATA_VIEW_ID,
        "attributes": {
            "title": DATA_VIEW_TITLE,
            "name": "Sluice logs",
            "timeFieldName": "@timestamp",
            "fieldFormatMap": json.dumps(formats, separators=(",", ":")),
        },
        "references": [],
    }


def production_overview():
    volume = xy(
        "Sluice · Log volume by service",
        "bar_stacked",
        "t",
        ["n"],
        split="s",
        columns={
            "t": date_histogram(),
            "s": terms("service.name", 10, "n", other=True),
            "n": count("Events"),
        },
        description="Events per interval, top 10 services.",
    )
    error_rate = xy(
        "Sluice · HTTP 5xx error rate",
        "line",
        "t",
        ["r"],
        columns={
            "t": date_histogram(),
            **ratio_formula("r", "5xx error rate", HTTP_5XX, HTTP_REQUEST),
        },
        description="Share of HTTP responses with status >= 500 (runbook: HighErrorRate at 5 %).",
    )
    p95 = xy(
        "Sluice · p95 latency by service",
        "line",
        "t",
        ["p"],
        split="s",
        columns={
            "t": date_histogram(),
            "s": terms("service.name", 5, BY_COUNT),
            "p": percentile("event.duration", 95, "p95 duration"),
        },
        description="95th percentile of event.duration for the 5 busiest services "
        "(runbook: HighLatency at 2 s).",
        query="event.duration : *",
    )
    five_xx = xy(
        "Sluice · 5xx responses by service",
        "bar_horizontal",
        "s",
        ["n"],
        columns={"s": terms("service.name", 10, "n"), "n": count("5xx responses")},
        query=HTTP_5XX,
    )
    errors = xy(
        "Sluice · Error logs by service",
        "bar_stacked",
        "t",
        ["n"],
        split="s",
        columns={
            "t": date_histogram(),
            "s": terms("service.name", 10, "n", other=True),
            "n": count("Error and fatal logs"),
        },
        query="log.level : (error or fatal)",
    )
    patterns = table(
        "Sluice · Top error patterns",
        {
            "p": terms("sluice.pattern.id", 20, "n", label="Pattern id"),
            "s": terms("service.name", 3, "n", label="Service"),
            "n": count("Events"),
        },
        # The template itself is full text (not aggregatable); open a pattern id in Discover
        # to read it.
        description="Most frequent log patterns among error and fatal events; filter on "
        "sluice.pattern.id in Discover to read the template.",
        query="log.level : (error or fatal)",
    )
    vis = [volume, error_rate, p95, five_xx, errors, patterns]
    board = dashboard(
        "Sluice · Production overview",
        "Error rate, 5xx, p95 latency and volume per service (runbook: production overview).",
        [
            (volume, 24, 14),
            (error_rate, 24, 14),
            (p95, 24, 14),
            (five_xx, 24, 14),
            (errors, 24, 14),
            (patterns, 24, 14),
        ],
    )
    return vis, board


def api_per_endpoint():
    endpoints = table(
        "Sluice · Endpoints",
        {
            "e": terms("url.path", 50, "n", label="Endpoint"),
            "m": terms("http.request.method", 5, "n", label="Method"),
            "n": count("Requests"),
            "f": count("5xx", HTTP_5XX),
            "c": count(
                "4xx", "http.response.status_code >= 400 and http.response.status_code < 500"
            ),
            "p50": percentile("event.duration", 50, "p50 duration"),
            "p95": percentile("event.duration", 95, "p95 duration"),
            "p99": percentile("event.duration", 99, "p99 duration"),
        },
        description="Requests, errors and latency per url.path and method.",
        query=HTTP_REQUEST,
    )
    statuses = xy(
        "Sluice · Status codes over time",
        "bar_stacked",
        "t",
        ["n"],
        split="s",
        columns={
            "t": date_histogram(),
            "s": terms("http.response.status_code", 10, "n", other=True),
            "n": count("Responses"),
        },
        query=HTTP_REQUEST,
    )
    latency = xy(
        "Sluice · p95 latency of the busiest endpoints",
        "line",
        "t",
        ["p"],
        split="e",
        columns={
            "t": date_histogram(),
            "e": terms("url.path", 5, BY_COUNT),
            "p": percentile("event.duration", 95, "p95 duration"),
        },
        query="event.duration : *",
    )
    slowest = xy(
        "Sluice · Slowest endpoints (p95)",
        "bar_horizontal",
        "e",
        ["p"],
        columns={
            "e": terms("url.path", 10, "p"),
            "p": percentile("event.duration", 95, "p95 duration"),
        },
        query="event.duration : *",
    )
    failing = xy(
        "Sluice · Endpoints returning 5xx",
        "bar_horizontal",
        "e",
        ["n"],
        columns={"e": terms("url.path", 10, "n"), "n": count("5xx responses")},
        query=HTTP_5XX,
    )
    vis = [endpoints, statuses, latency, slowest, failing]
    board = dashboard(
        "Sluice · API per endpoint",
        "Per url.path: request count, status codes and duration percentiles.",
        [
            (endpoints, 48, 16),
            (statuses, 24, 14),
            (latency, 24, 14),
            (slowest, 24, 14),
            (failing, 24, 14),
        ],
    )
    return vis, board


def business_activity():
    logins = xy(
        "Sluice · Logins",
        "bar_stacked",
        "t",
        ["n"],
        split="f",
        columns={
            "t": date_histogram(),
            "f": filters(
                [
                    ("Successful", f"{LOGIN} and http.response.status_code < 400"),
                    ("Failed", f"{LOGIN} and http.response.status_code >= 400"),
                ]
            ),
            "n": count("Logins"),
        },
        query=LOGIN,
    )
    chat = xy(
        "Sluice · Chat requests and LLM calls",
        "line",
        "t",
        ["n"],
        split="f",
        columns={
            "t": date_histogram(),
            "f": filters(
                [
                    ("Chat requests", 'url.path : "/api/chat"'),
                    ("LLM API calls", 'message : "chat/completions"'),
                    (
                        "LLM API errors",
                        'message : "chat/completions" and log.level : (warn or error or fatal)',
                    ),
                ]
            ),
            "n": count("Events"),
        },
        query='url.path : "/api/chat" or message : "chat/completions"',
    )
    sessions = xy(
        "Sluice · Session activity",
        "bar_stacked",
        "t",
        ["n"],
        split="m",
        columns={
            "t": date_histogram(),
            "m": terms("http.request.method", 5, "n"),
            "n": count("Session requests"),
        },
        query="url.path : /api/sessions*",
        description="Requests to /api/sessions (GET reads, POST creates).",
    )
    users = metric(
        "Sluice · Active users",
        "u",
        unique_count("user.name", "Distinct users"),
        query="user.name : *",
    )
    top_users = xy(
        "Sluice · Most active users",
        "bar_horizontal",
        "u",
        ["n"],
        columns={"u": terms("user.name", 10, "n"), "n": count("Requests")},
        query="user.name : *",
    )
    vis = [logins, chat, sessions, users, top_users]
    board = dashboard(
        "Sluice · Business activity",
        "Logins, chat and LLM calls, sessions and users (runbook: business activity).",
        [(logins, 24, 14), (chat, 24, 14), (sessions, 24, 14), (users, 8, 14), (top_users, 16, 14)],
    )
    return vis, board


def security():
    failed_by_ip = xy(
        "Sluice · Failed logins by client IP",
        "bar_horizontal",
        "ip",
        ["n"],
        columns={"ip": terms("client.ip", 15, "n"), "n": count("Failed logins")},
        query=FAILED_LOGIN,
        description="Brute force shows up as one address with many failures.",
    )
    failed_over_time = xy(
        "Sluice · Failed logins over time",
        "bar_stacked",
        "t",
        ["n"],
        split="s",
        columns={
            "t": date_histogram(),
            "s": terms("service.name", 5, "n", other=True),
            "n": count("Failed logins"),
        },
        query=FAILED_LOGIN,
    )
    attacks = xy(
        "Sluice · Web attacks",
        "bar_stacked",
        "t",
        ["n"],
        split="f",
        columns={
            "t": date_histogram(),
            "f": filters(
                [
                    (
                        "SQL injection",
                        (
                            "url.original : (*UNION*SELECT* or *union*select* or *%27--* "
                            "or *%27%20OR%20* or *DROP%20TABLE*)"
                        ),
                    ),
                    (
                        "Path traversal",
                        (
                            "url.original : (*../* or *..%2F* or *%2e%2e%2f* or *%2E%2E%2F* "
                            "or */etc/passwd*)"
                        ),
                    ),
                    ("XSS", "url.original : (*%3Cscript* or *%3cscript* or *javascript%3A*)"),
                    (
                        "Sensitive files",
                        (
                            "url.path : (*/.env or */.git/* or */wp-login.php or */phpmyadmin* "
                            "or */.aws/*)"
                        ),
                    ),
                ]
            ),
            "n": count("Requests"),
        },
        query="url.original : * or url.path : *",
    )
    scanners = xy(
        "Sluice · Scanners by user agent",
        "bar_horizontal",
        "a",
        ["n"],
        columns={"a": terms("user_agent.original", 10, "n"), "n": count("Requests")},
        query=SCANNER_AGENTS,
    )
    probing = table(
        "Sluice · Clients probing for missing paths",
        {
            "ip": terms("client.ip", 20, "n", label="Client IP"),
            "n": count("404 responses"),
            "p": unique_count("url.path", "Distinct paths"),
        },
        description="Many distinct 404 paths from one address is a scanner at work.",
        query="http.response.status_code : 404",
    )
    secrets = xy(
        "Sluice · Secrets redacted from logs",
        "bar_stacked",
        "t",
        ["n"],
        split="k",
        columns={
            "t": date_histogram(),
            "k": terms("sluice.redacted", 10, "n", label="Kind"),
            "n": count("Events with secrets"),
        },
        query="sluice.redacted : *",
        description="Events in which Sluice redacted a secret: the application is leaking it.",
    )
    leakers = table(
        "Sluice · Services leaking secrets",
        {
            "s": terms("service.name", 20, "n", label="Service"),
            "k": terms("sluice.redacted", 5, "n", label="Kind"),
            "n": count("Events"),
        },
        query="sluice.redacted : *",
    )
    vis = [failed_by_ip, failed_over_time, attacks, scanners, probing, secrets, leakers]
    board = dashboard(
        "Sluice · Security",
        "Failed logins by client.ip, web attacks, scanners and leaked secrets (runbook: security).",
        [
            (failed_by_ip, 24, 14),
            (failed_over_time, 24, 14),
            (attacks, 24, 14),
            (scanners, 24, 14),
            (probing, 24, 14),
            (secrets, 24, 14),
            (leakers, 48, 12),
        ],
    )
    return vis, board


def objects():
    out = [data_view()]
    for build in (production_overview, api_per_endpoint, business_activity, security):
        vis, board = build()
        out.extend(vis)
        out.append(board)
    for obj in out:
        obj["coreMigrationVersion"] = CORE_MIGRATION_VERSION
        obj["typeMigrationVersion"] = TYPE_MIGRATION_VERSION[obj["type"]]
    return out


def render():
    return "".join(json.dumps(o, sort_keys=True, ensure_ascii=False) + "\n" for o in objects())


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--stdout":
        sys.stdout.write(render())
        return
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
