"""A stand-in for PyAudio, so the SDK's samples run where there is no sound card.

Only what the azure-ai-voicelive samples use: one input and one output device; `open()` in blocking mode
(`read`/`write`) or callback mode (`stream_callback`, pumped by a thread). The microphone plays the WAV
named by VOICEBRIDGE_STANDIN_WAV (PCM16 mono at the stream's rate) once, then silence; playback is
swallowed. Time runs VOICEBRIDGE_STANDIN_SPEED times faster than real time (default 1) so a test waits
less; the emulator's VAD counts audio time, so the turns are the same.

It reports on stderr, one line each, so a test can follow without polling: `[pyaudio-standin] microphone
done` when the WAV has been read, `[pyaudio-standin] playing sound` at the first non-silent audio played,
and `[pyaudio-standin] played N bytes of sound` when PyAudio is terminated.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import wave

paInt16 = 8
paFloat32 = 1
paInt32 = 2
paInt8 = 16
paUInt8 = 32
paContinue, paComplete, paAbort = 0, 1, 2
_SAMPLE_SIZES = {paInt16: 2, paFloat32: 4, paInt32: 4, paInt8: 1, paUInt8: 1}

_DEVICES = [
    {"index": 0, "name": "stand-in microphone", "maxInputChannels": 1, "maxOutputChannels": 0,
     "defaultSampleRate": 24000.0},
    {"index": 1, "name": "stand-in speaker", "maxInputChannels": 0, "maxOutputChannels": 1,
     "defaultSampleRate": 24000.0},
]
_lock = threading.Lock()
_played = {"bytes": 0, "announced": False}


def _say(text: str) -> None:
    print(f"[pyaudio-standin] {text}", file=sys.stderr, flush=True)


def _speed() -> float:
    return float(os.environ.get("VOICEBRIDGE_STANDIN_SPEED", "1"))


def get_sample_size(format: int) -> int:  # noqa: A002  (PyAudio's own parameter name)
    return _SAMPLE_SIZES[format]


def _microphone(rate: int) -> bytes:
    path = os.environ.get("VOICEBRIDGE_STANDIN_WAV")
    if not path:
        return b""
    with wave.open(path, "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, rate):
            raise OSError(f"stand-in microphone: {path} is not PCM16 mono at {rate} Hz")
        return wav.readframes(wav.getnframes())


def _heard(data: bytes) -> None:
    if not data:
        return
    with _lock:
        if any(data):
            _played["bytes"] += len(data)
            first = not _played["announced"]
            _played["announced"] = True
        else:
            first = False
    if first:
        _say("playing sound")


class Stream:
    def __init__(self, *, rate: int, channels: int, format: int, input: bool, output: bool,  # noqa: A002
                 frames_per_buffer: int, stream_callback=None):
        if channels != 1 or format != paInt16:
            raise OSError("the stand-in devices are PCM16 mono")
        self._rate, self._input, self._output = rate, input, output
        self._frames = frames_per_buffer
        self._callback = stream_callback
        self._mic = _microphone(rate) if input else b""
        self._mic_pos = 0
        self._clock = time.monotonic()
        self._active = False
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_stream()

    # The microphone: the WAV once, then silence, at the stand-in's speed.
    def _capture(self, frames: int) -> bytes:
        self._clock += frames / self._rate / _speed()
        delay = self._clock - time.monotonic()
        if delay > 0:
            self._stopped.wait(delay)
        size = frames * 2
        chunk = self._mic[self._mic_pos:self._mic_pos + size]
        before = self._mic_pos
        self._mic_pos += size
        if before < len(self._mic) <= self._mic_pos:
            _say("microphone done")
        return chunk + bytes(size - len(chunk))

    def _pump(self) -> None:
        while not self._stopped.is_set():
            if self._input:
                data = self._capture(self._frames)
            else:
                self._clock += self._frames / self._rate / _speed()
                delay = self._clock - time.monotonic()
                if delay > 0 and self._stopped.wait(delay):
                    return
                data = None
            try:
                result = self._callback(data, self._frames, {}, 0)
            except Exception as exc:  # PortAudio stops the stream when its callback fails
                _say(f"callback failed: {exc!r}")
                return
            out, flag = result if isinstance(result, tuple) else (None, result)
            if self._output and out:
                _heard(bytes(out))
            if flag != paContinue:
                return

    def start_stream(self) -> None:
        if self._active:
            return
        self._active = True
        self._stopped.clear()
        self._clock = time.monotonic()
        if self._callback is not None:
            self._thread = threading.Thread(target=self._pump, name="pyaudio-standin", daemon=True)
            self._thread.start()

    def stop_stream(self) -> None:
        self._active = False
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def close(self) -> None:
        self.stop_stream()

    def is_active(self) -> bool:
        return self._active

    def is_stopped(self) -> bool:
        return not self._active

    def read(self, num_frames: int, exception_on_overflow: bool = True) -> bytes:
        return self._capture(num_frames)

    def write(self, frames: bytes, num_frames: int | None = None, exception_on_underflow: bool = False) -> None:
        _heard(bytes(frames))

    def get_read_available(self) -> int:
        return self._frames

    def get_write_available(self) -> int:
        return self._frames


class PyAudio:
    Stream = Stream

    def get_device_count(self) -> int:
        return len(_DEVICES)

    def get_device_info_by_index(self, index: int) -> dict:
        return dict(_DEVICES[index])

    def get_default_input_device_info(self) -> dict:
        return dict(_DEVICES[0])

    def get_default_output_device_info(self) -> dict:
        return dict(_DEVICES[1])

    def get_sample_size(self, format: int) -> int:  # noqa: A002
        return get_sample_size(format)

    def open(self, rate: int, channels: int, format: int, input: bool = False, output: bool = False,  # noqa: A002
             input_device_index=None, output_device_index=None, frames_per_buffer: int = 1024,
             start: bool = True, stream_callback=None, **_) -> Stream:
        stream = Stream(rate=rate, channels=channels, format=format, input=input, output=output,
                        frames_per_buffer=frames_per_buffer, stream_callback=stream_callback)
        if not start:
            stream.stop_stream()
        return stream

    def terminate(self) -> None:
        with _lock:
            played = _played["bytes"]
        _say(f"played {played} bytes of sound")
