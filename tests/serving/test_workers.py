"""One worker per core, each with its own loop, bridge and (in emulator mode) its own emulator (issue 10)."""

from __future__ import annotations

import json
import os

import pytest

from serving.conftest import serve
from support.hostile import http
from support.tab import Tab
from voicebridge.settings import Settings, SettingsError, cpu_count


def test_by_default_an_instance_runs_one_worker_per_core():
    assert cpu_count() == len(os.sched_getaffinity(0))
    assert Settings.from_env({}).worker_count == cpu_count()
    assert Settings.from_env({"VOICEBRIDGE_WORKERS": "3"}).worker_count == 3


def test_a_fixed_emulator_port_cannot_be_shared_by_several_workers():
    with pytest.raises(SettingsError, match="VOICEBRIDGE_EMULATOR_PORT"):
        Settings.from_env({"VOICEBRIDGE_EMULATOR_PORT": "8765", "VOICEBRIDGE_WORKERS": "2"})
    assert Settings.from_env({"VOICEBRIDGE_EMULATOR_PORT": "8765", "VOICEBRIDGE_WORKERS": "1"}).emulator_port == 8765


def test_workers_share_the_connections_and_each_runs_its_own_emulator(request):
    served = serve(request, {"VOICEBRIDGE_WORKERS": "2"})  # emulator mode: no endpoint configured
    workers = set()
    for _ in range(500):  # the app is healthy as soon as one worker serves; wait for the second
        workers.add(json.loads(http(served.port)[1])["worker"])
        if len(workers) == 2:
            break
    assert len(workers) == 2
    tabs = [Tab(served.app.url) for _ in range(8)]
    try:
        for tab in tabs:
            tab.start()
        for tab in tabs:
            tab.wait_state("ready")  # whichever worker took it, its own emulator answered
        sessions: dict[int, int] = {}
        for _ in range(500):  # until both workers answered (which one answers is the kernel's choice)
            if sessions.keys() == workers:
                break
            status, body = http(served.port)
            assert status == 200
            health = json.loads(body)
            sessions[health["worker"]] = health["sessions"]
        # A busier worker leaves new connections (these health checks too) to its less busy sibling,
        # so perhaps only one answers: each counts only its own tabs, and neither holds all of them.
        assert sessions.keys() <= workers
        if len(sessions) == 2:
            assert sum(sessions.values()) == len(tabs)
        assert all(0 < n < len(tabs) for n in sessions.values()), sessions
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
