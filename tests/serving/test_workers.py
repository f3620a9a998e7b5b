"""One worker per core, each with its own loop, bridge and (in emulator mode) its own emulator (issue 10)."""

from __future__ import annotations

import json
import os
import re

import pytest

from serving.conftest import serve
from support.hostile import http
from support.tab import Tab
from support.waiting import until
from voicebridge.settings import Settings, SettingsError, cpu_count


def test_by_default_an_instance_runs_one_worker_per_core(tmp_path):
    nowhere = str(tmp_path / "no-cgroup")
    assert cpu_count(nowhere) == len(os.sched_getaffinity(0))
    assert Settings.from_env({}).worker_count == cpu_count()
    assert Settings.from_env({"VOICEBRIDGE_WORKERS": "3"}).worker_count == 3


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000\n", 2), ("50000 100000\n", 1),
     ("6400000 100000\n", None), ("garbage\n", None)],
)
def test_a_container_cpu_quota_caps_the_workers(tmp_path, cpu_max, cores):
    """cgroup v2 cpu.max ("<quota> <period>", or "max"): Docker's --cpus and Kubernetes' limits set it
    without changing the CPU set the container sees; a quota above the CPU set changes nothing."""
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    visible = len(os.sched_getaffinity(0))
    assert cpu_count(str(path)) == (min(cores, visible) if cores is not None else visible)


def test_a_fixed_emulator_port_cannot_be_shared_by_several_workers():
    with pytest.raises(SettingsError, match="VOICEBRIDGE_EMULATOR_PORT"):
        Settings.from_env({"VOICEBRIDGE_EMULATOR_PORT": "8765", "VOICEBRIDGE_WORKERS": "2"})
    assert Settings.from_env({"VOICEBRIDGE_EMULATOR_PORT": "8765", "VOICEBRIDGE_WORKERS": "1"}).emulator_port == 8765


def test_workers_share_the_connections_and_each_runs_its_own_emulator(request):
    served = serve(request, {"VOICEBRIDGE_WORKERS": "2"})  # emulator mode: no endpoint configured

    def ready_workers() -> dict[int, str] | None:  # pid -> slot, once both have logged that they serve
        found = {int(pid): slot for pid, slot in re.findall(r"event=worker.ready pid=(\d+) slot=(\d+)",
                                                            served.log.read_text())}
        return found if len(found) == 2 else None

    slots = until(ready_workers, 30, "both workers ready")
    tabs = [Tab(served.app.url) for _ in range(8)]
    try:
        held: dict[str, int] = {}
        for tab in tabs:
            tab.start()
            # The resume token names the slot of the worker that holds the tab.
            slot = tab.wait_for(lambda m: m["type"] == "session")["resume"].split(".", 1)[0]
            held[slot] = held.get(slot, 0) + 1
        for tab in tabs:
            tab.wait_state("ready")  # whichever worker took it, its own emulator answered
        assert held.keys() == set(slots.values()) and sum(held.values()) == len(tabs), held  # both took some
        # Each worker counts only its own tabs: ask both (which one answers a request is the kernel's choice).
        sessions: dict[int, int] = {}

        def both_answered() -> bool:
            status, body = http(served.port)
            assert status == 200
            health = json.loads(body)
            sessions[health["worker"]] = health["sessions"]
            return sessions.keys() == slots.keys()

        until(both_answered, 30, "both workers answered /healthz", every_s=0)
        assert {slots[pid]: n for pid, n in sessions.items()} == held
    finally:
        for tab in tabs:
            tab.close()
    assert served.errors() == []


def test_the_load_board_is_shared_across_fork_and_names_the_busier_worker():
    from voicebridge.balance import LoadBoard, free_slot

    board = LoadBoard(2)
    pid = os.fork()
    if pid == 0:  # a worker publishes from its own process
        board.publish(1, 7)
        os._exit(0)
    os.waitpid(pid, 0)
    board.publish(0, 3)
    assert board.busier_than_a_sibling(1) and not board.busier_than_a_sibling(0)
    assert not LoadBoard(1).busier_than_a_sibling(0)  # a single worker never defers
    assert free_slot({0}, 2) == 1 and free_slot({0, 1}, 2) == -1


@pytest.mark.parametrize(
    ("variable", "value"),
    [("VOICEBRIDGE_WORKERS", "-1"), ("VOICEBRIDGE_WORKERS", "many"), ("VOICEBRIDGE_MAX_CONNECTIONS", "1"),
     ("VOICEBRIDGE_TAB_IDLE_SECONDS", "0"), ("VOICEBRIDGE_TAB_SILENCE_SECONDS", "x"), ("VOICEBRIDGE_REQUEST_SECONDS", "0")],
)
def test_serving_settings_refuse_bad_values_naming_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
