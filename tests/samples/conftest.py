"""The official azure-ai-voicelive samples, fetched from the installed SDK's sdist on PyPI at test time (never
copied into this repository), run as real processes against a fresh emulator."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import wave
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from support.sdk_client import KEY, silence, speech
from voicebridge.emulator import Emulator, EmulatorConfig

STANDIN = Path(__file__).parent / "standin"
SDK_VERSION = version("azure-ai-voicelive")
# Inside the test virtualenv, so a second run (and `make clean`) treat it like the other dependencies.
CACHE = Path(sys.prefix) / "cache" / f"azure-ai-voicelive-{SDK_VERSION}-sdist"
DOWNLOAD_TIMEOUT_S = 120
SPEED = 4  # the stand-in microphone runs this many times faster than real time


def _download_samples() -> Path:
    samples = CACHE / f"azure_ai_voicelive-{SDK_VERSION}" / "samples"
    if samples.is_dir():
        return samples
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--no-binary", ":all:", "--no-deps", f"azure-ai-voicelive=={SDK_VERSION}", "-d", str(CACHE)],
                   check=True, timeout=DOWNLOAD_TIMEOUT_S)
    (archive,) = CACHE.glob(f"azure_ai_voicelive-{SDK_VERSION}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return samples


@pytest.fixture(scope="session")
def sdist_samples() -> Path:
    """The sdist's samples/ folder (downloaded once per virtualenv)."""
    return _download_samples()


@pytest.fixture
def samples_dir(sdist_samples: Path, tmp_path: Path) -> Path:
    """A private copy per test: some samples chdir to their own folder, and no .env of ours is above it."""
    return Path(shutil.copytree(sdist_samples, tmp_path / "samples"))


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    """What the stand-in microphone says: one utterance, then the stand-in goes on with silence."""
    path = tmp_path / "utterance.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24_000)
        wav.writeframes(silence(400) + speech(1200, seed=26) + silence(900))
    return path


@pytest.fixture
def fresh_emulator() -> Iterator[Emulator]:
    emu = Emulator(EmulatorConfig(pace=0, required_key=KEY))
    emu.start(host="127.0.0.1", port=0)
    yield emu
    emu.stop()


class SampleProcess:
    """One sample as a real process; its output is collected line by line and waited on without polling."""

    def __init__(self, script: Path, env: dict[str, str]):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-u", str(script)], cwd=script.parent, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, encoding="utf-8", errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.proc.wait()
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def said(self, text: str) -> bool:
        with self._cond:
            return any(text in line for line in self.lines)

    def wait_for_output(self, text: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.said(text) or self.proc.poll() is not None, timeout) and \
                self.said(text)

    def ended(self) -> bool:
        return self.proc.poll() is not None

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl+C, as a person ends an interactive sample; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"the sample did not end within {timeout} s:\n{self.output()}") from None
        self._reader.join(timeout=10)
        return code


@pytest.fixture
def run_sample(fresh_emulator: Emulator, microphone: Path) -> Iterator[Callable[..., SampleProcess]]:
    started: list[SampleProcess] = []

    def run(script: Path, **extra_env: str) -> SampleProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AGENT_", "APPLICATIONINSIGHTS"))}
        env.update({
            "AZURE_VOICELIVE_ENDPOINT": f"http://127.0.0.1:{fresh_emulator.port}",
            "AZURE_VOICELIVE_USE_API_KEY": "true",
            "AZURE_VOICELIVE_API_KEY": KEY,
            "PYTHONPATH": os.pathsep.join([str(STANDIN), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "VOICEBRIDGE_STANDIN_WAV": str(microphone),
            "VOICEBRIDGE_STANDIN_SPEED": str(SPEED),
            "PYTHONIOENCODING": "utf-8",
            **extra_env,
        })
        process = SampleProcess(script, env)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)
