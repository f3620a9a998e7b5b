"""The parts of issue 13 that are pure: the trust rules for a tab's user key, the settings, and one run's
limit clocks on an event loop whose clock the test moves (so the idle re-arm and the audio bucket are
checked exactly, with no waiting)."""

from __future__ import annotations

import asyncio

import pytest

from voicebridge.identity import UserKey, principal_name, request_scheme, user_key
from voicebridge.protocol import ErrorCode
from voicebridge.session.limits import Limits, RunLimits
from voicebridge.settings import Settings, SettingsError

H = {"X-MS-CLIENT-PRINCIPAL-ID": "AbC-1", "X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com", "X-Forwarded-For": "10.0.0.1, 203.0.113.9:4431"}


def test_headers_count_only_when_trusted():
    assert user_key(H, "10.1.1.1", False, False) == UserKey("address", "10.1.1.1")
    assert user_key(H, "10.1.1.1", False, True) == UserKey("address", "203.0.113.9")
    key = user_key(H, "10.1.1.1", True, True)
    assert key == UserKey("principal", "abc-1") and key.signed_in and key.name == "ann@example.com"
    # Easy Auth trusted but no principal (an excluded path): the address rules apply.
    assert user_key({"X-Forwarded-For": "[2001:db8::1]:443"}, "p", True, True) == UserKey("address", "2001:db8::1")
    assert user_key({"X-Forwarded-For": "2001:db8::2"}, "p", False, True) == UserKey("address", "2001:db8::2")
    assert user_key({"X-MS-CLIENT-PRINCIPAL-ID": "x" * 300}, "p", True, False) == UserKey("address", "p")
    assert principal_name(H, False) == "" and principal_name(H, True) == "ann@example.com"


@pytest.mark.parametrize(
    ("forwarded", "key"),
    [
        # The client sent its own X-Forwarded-For; the front end appended the address it saw.
        ("198.51.100.1, 203.0.113.9:50123", "203.0.113.9"),
        ("1.1.1.1,2.2.2.2,3.3.3.3, 203.0.113.9", "203.0.113.9"),  # a chain of invented hops
        ("garbage, [2001:db8::5]:443", "2001:db8::5"),
        ("203.0.113.9", "203.0.113.9"),  # nothing forged: the front end's entry alone
        ("198.51.100.1,203.0.113.9", "203.0.113.9"),  # two header lines arrive joined by a comma
    ],
)
def test_the_forwarded_address_is_the_entry_the_front_end_appended(forwarded, key):
    assert user_key({"X-Forwarded-For": forwarded}, "10.1.1.1", False, True) == UserKey("address", key)


def test_forged_forwarded_entries_cannot_spread_one_client_over_many_keys():
    keys = {user_key({"X-Forwarded-For": f"10.9.{i}.{i}, 203.0.113.9:{40000 + i}"}, "p", False, True) for i in range(50)}
    assert keys == {UserKey("address", "203.0.113.9")}


def test_the_forwarded_scheme_counts_only_when_trusted():
    forged = {"X-Forwarded-Proto": "https, http"}  # the client said https; the front end appended http
    assert request_scheme(forged, "http", trust_forwarded=False) == "http"
    assert request_scheme(forged, "http", trust_forwarded=True) == "http"
    assert request_scheme({"X-Forwarded-Proto": "https"}, "http", trust_forwarded=True) == "https"
    assert request_scheme({"X-Forwarded-Proto": "gopher"}, "HTTP", trust_forwarded=True) == "http"


def test_a_user_key_is_hashed_for_logs_and_telemetry():
    key = UserKey("principal", "3f2504e0-4f89-11d3-9a0c-0305e82c3301")
    assert key.hashed == UserKey("principal", key.value, "other name").hashed, "stable across tabs and instances"
    assert key.value not in key.hashed and key.hashed.startswith("p-") and len(key.hashed) == 18
    assert UserKey("address", key.value).hashed != key.hashed


def test_limit_settings_default_turn_off_with_zero_and_take_a_thousand():
    d = Settings.from_env({})
    assert (d.max_sessions_per_user, d.max_sessions_per_address, d.max_session_s, d.idle_s, d.max_audio_rate) == (
        3, 20, 1800.0, 300.0, 1.5)
    assert not d.trust_easy_auth and not d.trust_forwarded
    names = ("VOICEBRIDGE_MAX_SESSIONS_PER_USER", "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS", "VOICEBRIDGE_MAX_SESSION_SECONDS",
             "VOICEBRIDGE_IDLE_SECONDS", "VOICEBRIDGE_MAX_AUDIO_RATE")
    big = Settings.from_env(dict.fromkeys(names, "1000"))
    assert (big.max_sessions_per_user, big.max_sessions_per_address, big.max_session_s, big.idle_s, big.max_audio_rate) == (
        1000, 1000, 1000.0, 1000.0, 1000.0)
    off = Settings.from_env(dict.fromkeys(names, "0"))
    assert (off.max_sessions_per_user, off.max_session_s, off.idle_s, off.max_audio_rate) == (0, 0.0, 0.0, 0.0)
    for name in names:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: "-1"})


class Clock:
    """An event loop whose time the test sets; `advance` runs whatever fell due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.loop = asyncio.new_event_loop()
        self.loop.time = lambda: self.now  # type: ignore[method-assign]

    def advance(self, to: float) -> None:
        self.now = to
        for _ in range(3):
            self.loop.run_until_complete(asyncio.sleep(0))

    def close(self) -> None:
        self.loop.close()


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.errors: list[ErrorCode] = []
        self.limits: list[str] = []
        self.ended: list[str] = []

    def send(self, text: str) -> None:
        self.sent.append(text)

    def error(self, code: ErrorCode, message: str) -> None:
        self.errors.append(code)

    def limit(self, code: str) -> None:
        self.limits.append(str(code))


def run_limits(clock: Clock, limits: Limits) -> tuple[RunLimits, Recorder]:
    rec = Recorder()
    run = RunLimits(limits, rec, rec, telemetry=rec)  # type: ignore[arg-type]  # tab, status and telemetry in one

    async def start() -> None:
        run.start(rec.ended.append)

    clock.loop.run_until_complete(start())
    return run, rec


def test_activity_postpones_the_idle_limit_which_then_ends_the_run():
    clock = Clock()
    try:
        run, rec = run_limits(clock, Limits(idle_s=10))
        clock.advance(9)
        run.activity()  # speech started, or a typed text
        clock.advance(11)
        assert rec.ended == []
        clock.advance(18.9)
        assert rec.ended == []
        clock.advance(19.1)
        assert rec.ended == ["idle_timeout"] and rec.errors == [ErrorCode.IDLE_TIMEOUT] and rec.limits == ["idle_timeout"]
    finally:
        clock.close()


def test_the_time_limit_warns_a_minute_before_and_a_cancelled_run_hears_nothing():
    clock = Clock()
    try:
        run, rec = run_limits(clock, Limits(max_session_s=600))
        clock.advance(539)
        assert rec.sent == []
        clock.advance(540)
        assert len(rec.sent) == 1 and '"seconds":60' in rec.sent[0] and "session_time_limit" in rec.sent[0]
        clock.advance(600)
        assert rec.ended == ["session_time_limit"]
        other, quiet = run_limits(clock, Limits(max_session_s=600, idle_s=5))
        other.cancel()  # the run ended first: its timers go with it
        clock.advance(2000)
        assert quiet.sent == [] and quiet.ended == []
    finally:
        clock.close()


def test_audio_beyond_one_and_a_half_times_real_time_after_two_seconds_is_not_forwarded():
    clock = Clock()
    second = 48_000  # bytes of one second of PCM16 at 24 kHz
    try:
        run, rec = run_limits(clock, Limits())
        assert run.audio_allowed(second) and run.audio_allowed(second)  # the 2 s allowance, at once
        assert not run.audio_allowed(960)  # nothing left
        assert rec.errors == [ErrorCode.AUDIO_RATE]
        clock.advance(1.0)  # refilled by 1.5 s
        assert run.audio_allowed(second) and not run.audio_allowed(second)
        assert rec.errors == [ErrorCode.AUDIO_RATE], "told once per session"
        clock.advance(100.0)  # a long pause refills only up to the allowance
        assert run.audio_allowed(2 * second) and not run.audio_allowed(960)
        # A microphone, 20 ms every 20 ms, never meets it.
        fresh, told = run_limits(clock, Limits())
        t = 100.0
        for _ in range(5000):
            t += 0.02
            clock.now = t
            assert fresh.audio_allowed(960)
        assert told.errors == []
        off, _ = run_limits(clock, Limits(audio_rate=0))
        assert all(off.audio_allowed(second * 100) for _ in range(10))
    finally:
        clock.close()
