"""The wire contract lives in protocol.py: the page's generated copy and docs/protocol.md must agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from voicebridge import contract, protocol
from voicebridge.protocol import ERROR_OUTCOMES, ClientType, CloseCode, ErrorCode, Outcome, ServerType, State

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_the_page_reads_a_current_copy_of_the_contract():
    assert contract.TARGET.read_text(encoding="utf-8") == contract.render(), (
        "static/js/contract.js is stale: run `python -m voicebridge.contract`"
    )


def _section(markdown: str, title: str) -> str:
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", markdown, re.M | re.S)
    assert match, f"docs/protocol.md has no section {title!r}"
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))])
    return rows[1:]  # without the header


def _ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def contract_mismatches(markdown: str) -> list[str]:
    """Where the protocol document and protocol.py disagree (empty when they agree)."""
    problems = []

    def compare(what: str, documented: set, code: set) -> None:
        if documented != code:
            problems.append(f"{what}: only in the docs {sorted(documented - code)}, only in code {sorted(code - documented)}")

    types = lambda title: {re.search(r'"type":"([^"]+)"', row[0]).group(1) for row in _rows(_section(markdown, title))}  # noqa: E731
    compare("browser → server types", types("Browser → server"), set(ClientType))
    compare("server → browser types", types("Server → browser"), set(ServerType))
    state_row = next(row for row in _rows(_section(markdown, "Server → browser")) if '"type":"state"' in row[0])
    compare("states", set(_ticked(state_row[1])), set(State))
    outcomes = {}
    for codes, _when, session in _rows(_section(markdown, "Error codes")):
        named = [o for o in Outcome if re.search(rf"\b{o.value}\b", session)]
        for code in _ticked(codes):
            outcomes[code] = named[0] if len(named) == 1 else f"unclear: {session!r}"
    compare("error codes", set(outcomes), set(ErrorCode))
    for code, outcome in ERROR_OUTCOMES.items():
        if code in outcomes and outcomes[code] != outcome:
            problems.append(f"{code}: the docs say the session {outcomes[code]}, protocol.py says {outcome}")
    closes = {int(c) for c in re.findall(r"^- `(\d+)`", _section(markdown, "Close codes"), re.M)}
    compare("close codes", closes, {int(c) for c in CloseCode})
    if f"over {protocol.MAX_FRAME_BYTES // 2**20} MiB" not in markdown:
        problems.append(f"the frame limit ({protocol.MAX_FRAME_BYTES} bytes) is not the documented one")
    if f"{protocol.SAMPLE_RATE // 1000} kHz" not in markdown:
        problems.append(f"the sample rate ({protocol.SAMPLE_RATE}) is not the documented one")
    return problems


def test_the_protocol_document_and_the_code_agree():
    assert contract_mismatches(DOCS.read_text(encoding="utf-8")) == []


def test_the_check_catches_a_document_that_drifted():
    docs = DOCS.read_text(encoding="utf-8")
    drifted = {
        "a code missing": re.sub(r"^\| `internal` .*\n", "", docs, flags=re.M),
        "an outcome changed": docs.replace("| `upstream_error` | the service reported an error event; `upstream_code` carries its code | continues |",
                                           "| `upstream_error` | the service reported an error event | ends (`error`) |"),
        "a state renamed": docs.replace("`processing`", "`thinking`", 1),
        "a close code missing": docs.replace("- `1012`", "- 1012"),
        "a message type renamed": docs.replace('`{"type":"audio.clear"}`', '`{"type":"audio.flush"}`'),
    }
    for what, text in drifted.items():
        assert text != docs, what
        assert contract_mismatches(text), what
