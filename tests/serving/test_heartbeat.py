"""A worker whose event loop hangs is replaced, and one that dies costs only its own tabs (issue 21).

Real app (gunicorn, two workers), real SDK, the test's emulator, real sockets. The hang is the mistake a
tool author makes: an `async def` tool that calls time.sleep (tests/support/blocking_tools.py).
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.conftest import Served, serve, upstream_env
from support.audio import silence, speech
from support.tab import Tab
from support.waiting import until

SUPPORT = Path(__file__).resolve().parents[1] / "support"
TIMEOUT_S = 4  # gunicorn's worker timeout for these tests (VOICEBRIDGE_WORKER_TIMEOUT_SECONDS)


def wait_for_log(served: Served, pattern: str, timeout: float, since: int = 0) -> re.Match:
    """The first line after byte `since` matching `pattern`, read as the log grows (bounded)."""
    return until(lambda: re.search(pattern, served.log.read_bytes()[since:].decode(errors="replace")), timeout,
                 f"a log line matching {pattern!r}", every_s=0.05)


def workers(served: Served, since: int = 0) -> dict[str, int]:
    """slot -> pid of the workers that reported ready (the latest in each slot)."""
    found = re.findall(r"event=worker.ready pid=(\d+) slot=(\d+)", served.log.read_bytes()[since:].decode())
    return {slot: int(pid) for pid, slot in found}


def token_of(tab: Tab, start: int = 0) -> str:
    return tab.wait_for(lambda m: m["type"] == "session", start=start)["resume"]


def turn(tab: Tab, seed: int) -> tuple[str, str]:
    """One spoken turn to its end: the final user and assistant transcripts."""
    mark = tab.mark()
    tab.speak(silence(200) + speech(700, seed=seed) + silence(900))
    final = lambda role: lambda m: m["type"] == "transcript" and m["role"] == role and m["final"]  # noqa: E731
    user = tab.wait_for(final("user"), 15, mark)
    assistant = tab.wait_for(final("assistant"), 15, mark)
    tab.wait_state("ready", 15, mark)
    tab.report(assistant["item_id"], len(tab.audio(assistant["item_id"])) // 48)
    return user["text"], assistant["text"]


def ready_tab(served: Served, request: pytest.FixtureRequest, emulator, source: str | None = None) -> Placed:
    known = {r.id for r in emulator.sessions()}
    tab = Tab(served.app.url, source=source)
    request.addfinalizer(tab.close)
    tab.start()
    token = token_of(tab)
    tab.wait_state("ready")
    (upstream,) = [r.id for r in emulator.sessions() if r.id not in known]
    return Placed(tab, token, upstream, source)


@dataclass
class Placed:
    tab: Tab
    token: str
    upstream: str  # the emulator's id of its Voice Live session
    source: str | None  # the local address it connected from (another peer address per tab, if set)

    @property
    def slot(self) -> str:
        return self.token.split(".", 1)[0]  # a resume token names its worker's slot


def tabs_on_both_workers(served: Served, request: pytest.FixtureRequest, emulator) -> list[Placed]:
    """A ready tab on each worker. Which worker accepts is the kernel's choice (the busier one leaves new
    connections to its sibling), so tabs are opened until both hold one."""
    wait_for_log(served, r"(?s)event=worker.ready.*event=worker.ready", 30)
    placed: dict[str, Placed] = {}
    for _ in range(12):
        tab = ready_tab(served, request, emulator)
        if tab.slot in placed:
            tab.tab.send({"type": "session.stop"})
            tab.tab.close()
            continue
        placed[tab.slot] = tab
        if len(placed) == 2:
            return list(placed.values())
    raise AssertionError(f"no tab reached the second worker: {sorted(placed)}")


def is_open(emulator, upstream: str) -> bool:
    return next(r for r in emulator.sessions() if r.id == upstream).open


def resumes_elsewhere_with_history(served: Served, emulator, token: str, said: tuple[str, str],
                                   source: str | None = None) -> Tab:
    """What the page does when its socket drops: resume by token; told the session is gone with its worker,
    a new session that carries the conversation as history, replayed into the new upstream."""
    tab = Tab(served.app.url, source=source)
    tab.send({"type": "session.resume", "resume": token})
    error = tab.wait_for(lambda m: m["type"] == "error")
    assert error["code"] == "resume_expired", error
    known = {r.id for r in emulator.sessions()}
    mark = tab.mark()
    tab.send({"type": "session.start", "history": [{"role": "user", "text": said[0]}, {"role": "assistant", "text": said[1]}]})
    tab.wait_state("ready", 15, mark)
    (record,) = [r for r in emulator.sessions() if r.id not in known]
    replayed = [(e["item"]["role"], e["item"]["content"][0]["text"]) for e in record.events_received
                if e.get("type") == "conversation.item.create"]
    assert replayed == [("user", said[0]), ("assistant", said[1])]
    assert tab.of_type("error") == [error]
    turn(tab, seed=77)  # and the conversation goes on
    return tab


@pytest.fixture
def served(request, emulator) -> Served:
    return serve(request, {
        **upstream_env(emulator),
        "VOICEBRIDGE_WORKERS": "2",
        "VOICEBRIDGE_WORKER_TIMEOUT_SECONDS": str(TIMEOUT_S),
        "VOICEBRIDGE_TOOLS": "blocking_tools",
        "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS": "0",
        "PYTHONPATH": str(SUPPORT),
    })


def unexpected_errors(served: Served, pid: int) -> list[str]:
    """Error lines, but gunicorn's own about the worker that was meant to go."""
    expected = (f"WORKER TIMEOUT (pid:{pid})", f"Worker (pid:{pid}) exited with code 1", f"Worker (pid:{pid}) was sent SIGKILL")
    return [line for line in served.errors() if not any(e in line for e in expected)]


def log_since(served: Served, mark: int) -> str:
    return served.log.read_bytes()[mark:].decode(errors="replace")


def test_a_tool_that_blocks_the_loop_gets_its_worker_replaced_and_its_tabs_resume_elsewhere(request, served, emulator):
    victim, bystander = tabs_on_both_workers(served, request, emulator)
    stuck_pid = workers(served)[victim.slot]
    said = turn(victim.tab, seed=71)
    turn(bystander.tab, seed=72)
    mark = served.mark()

    # The model calls the tool; the victim's worker freezes inside it.
    emulator.calls.queue([{"name": "block_the_loop", "arguments": "{}"}], victim.upstream)
    victim.tab.send({"type": "text", "text": "Please use your tools."})
    blocked = wait_for_log(served, r"event=loop.blocked seconds=\S+ task=(\S+) at=([^\n]*)", TIMEOUT_S + 5, mark)
    assert blocked.group(1).endswith(":tool:block_the_loop"), blocked.group(0)
    assert "blocking_tools.py" in blocked.group(2) and "block_the_loop" in blocked.group(2), blocked.group(0)

    # The sibling's tab keeps talking while the other worker is stuck, until it has been replaced.
    for seed in range(80, 92):
        turn(bystander.tab, seed=seed)
        if f"event=worker.gone pid={stuck_pid} " in log_since(served, mark):
            break
    else:
        raise AssertionError("the stuck worker was not replaced")
    assert f"WORKER TIMEOUT (pid:{stuck_pid})" in log_since(served, mark)
    replaced = wait_for_log(served, rf"event=worker.ready pid=(\d+) slot={victim.slot}", 30, mark)
    assert int(replaced.group(1)) != stuck_pid
    turn(bystander.tab, seed=95)
    assert bystander.tab.of_type("error") == [] and "reconnecting" not in bystander.tab.states()
    assert not bystander.tab.closed.is_set() and is_open(emulator, bystander.upstream)

    # The stuck worker's tab lost its socket with the worker, and its paid upstream session went too.
    victim.tab.wait_closed(timeout=10)
    assert emulator.wait_until(lambda: not is_open(emulator, victim.upstream), timeout=10)
    resumes_elsewhere_with_history(served, emulator, victim.token, said)
    assert unexpected_errors(served, stuck_pid) == []


def test_a_killed_worker_costs_only_its_tabs_and_its_user_counts_are_void_at_once(request, emulator):
    # One session per address: the killed worker's row in the per-user counts must not hold the user out.
    served = serve(request, {**upstream_env(emulator), "VOICEBRIDGE_WORKERS": "2", "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS": "1"})
    wait_for_log(served, r"(?s)event=worker.ready.*event=worker.ready", 30)
    placed: dict[str, Placed] = {}
    for n in range(2, 14):  # a tab from its own address on each worker (as in tabs_on_both_workers)
        tab = ready_tab(served, request, emulator, source=f"127.0.0.{n}")
        if tab.slot not in placed:
            placed[tab.slot] = tab
        if len(placed) == 2:
            break
    else:
        raise AssertionError("no tab reached the second worker")
    victim, bystander = placed.values()
    said = turn(victim.tab, seed=61)
    pid = workers(served)[victim.slot]
    mark = served.mark()

    os.kill(pid, signal.SIGKILL)
    victim.tab.wait_closed(timeout=10)
    wait_for_log(served, rf"event=worker.gone pid={pid} ", 10, mark)  # reaped by the master
    assert emulator.wait_until(lambda: not is_open(emulator, victim.upstream), timeout=10)
    # The same address again, at once: admitted (the dead worker's count is void), history replayed.
    resumes_elsewhere_with_history(served, emulator, victim.token, said, source=victim.source)
    turn(bystander.tab, seed=62)
    assert bystander.tab.of_type("error") == [] and "reconnecting" not in bystander.tab.states()
    assert unexpected_errors(served, pid) == []
