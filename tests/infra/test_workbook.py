"""The dashboard workbook queries exactly the metric names the app emits, and has every tile issue 5 asks for."""

from __future__ import annotations

import json
import re

from infra_helpers import INFRA

from voicebridge.telemetry import METRICS

WORKBOOK = json.loads((INFRA / "modules" / "workbook.json").read_text())


def queries() -> dict[str, str]:
    return {item["name"]: item["content"]["query"] for item in WORKBOOK["items"] if item["type"] == 3}


def queried_metric_names(query: str) -> set[str]:
    # Every quoted voicebridge.* literal is a metric name (`name == "…"` or `name in ("…", …)`); the one
    # startswith prefix covers them all and is checked separately.
    return set(re.findall(r'"(voicebridge\.[a-z_.]+)"', query)) - {"voicebridge.turn", "voicebridge."}


def test_every_metric_name_the_workbook_queries_is_one_the_app_emits():
    names = set().union(*(queried_metric_names(q) for q in queries().values() if "customMetrics" in q))
    assert names, "the workbook queries no metric"
    assert names <= set(METRICS), names - set(METRICS)
    prefixes = {p for q in queries().values() for p in re.findall(r'startswith "([^"]+)"', q)}
    assert all(any(m.startswith(p) for m in METRICS) for p in prefixes)


def test_the_workbook_has_every_tile_operations_asked_for():
    q = queries()
    assert "voicebridge.sessions.active" in q["active-sessions"]
    assert "voicebridge.turn.latency" in q["turn-latency"] and re.search(r"percentilesw?\(.*50, 95\)", q["turn-latency"])
    assert "voicebridge.barge_in.count" in q["barge-ins"]
    assert "voicebridge.upstream.reconnects" in q["reconnects"]
    assert "voicebridge.errors" in q["errors-by-code"] and "customDimensions.code" in q["errors-by-code"]
    assert q["failed-requests"].startswith("requests") and "success == false" in q["failed-requests"]
    # Issue 19: what Voice Live bills is tokens, by kind and model; failed replies by reason.
    assert "voicebridge.tokens" in q["tokens-today"] and "customDimensions.kind" in q["tokens-today"]
    assert "customDimensions.model" in q["tokens-today"]
    assert "voicebridge.tokens" in q["tokens-by-kind"]
    assert "voicebridge.reply.failures" in q["reply-failures"] and "customDimensions.reason" in q["reply-failures"]
    # Each worker process reports as <host>:<pid>: an instance is the host part.
    assert 'dcount(tostring(split(cloud_RoleInstance, ":")[0]))' in q["instances"]
    # Issue 13: what the bill is made of, per (hashed) user, and the limits that were met.
    minutes = q["voice-live-minutes"]
    assert "voicebridge.session.seconds" in minutes and "startofday(now())" in minutes
    assert "customDimensions.user" in minutes and "/ 60" in minutes
    assert "voicebridge.limit.hits" in q["limit-hits"] and "customDimensions.code" in q["limit-hits"]
    assert all("{TimeRange}" in query for query in q.values())

