"""The official azure-ai-voicelive samples, fetched from the installed SDK's sdist on PyPI at test time (never
copied into this repository), run as real processes against a fresh emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import wave
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from support.sdk_client import KEY, silence, speech
from support.upstreams import running
from support.watched import WatchedProcess, clean_env
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
    # Extracted aside and renamed into place, so an interrupted run never leaves half a sample folder behind.
    with tempfile.TemporaryDirectory(dir=CACHE) as staging, tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
        os.replace(Path(staging) / samples.parent.name, samples.parent)
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
    with running(EmulatorConfig(pace=0, required_key=KEY)) as emu:
        yield emu


@pytest.fixture
def run_sample(microphone: Path) -> Iterator[Callable[..., WatchedProcess]]:
    """Start a sample against an emulator at `endpoint`, with the stand-in sound card."""
    started: list[WatchedProcess] = []

    def run(script: Path, endpoint: str, **extra_env: str) -> WatchedProcess:
        env = clean_env()
        env.update({
            "AZURE_VOICELIVE_ENDPOINT": endpoint,
            "AZURE_VOICELIVE_USE_API_KEY": "true",
            "AZURE_VOICELIVE_API_KEY": KEY,
            "PYTHONPATH": os.pathsep.join([str(STANDIN), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "VOICEBRIDGE_STANDIN_WAV": str(microphone),
            "VOICEBRIDGE_STANDIN_SPEED": str(SPEED),
            "PYTHONIOENCODING": "utf-8",
            **extra_env,
        })
        process = WatchedProcess([sys.executable, "-u", str(script)], script.parent, env)
        started.append(process)
        return process

    yield run
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)
