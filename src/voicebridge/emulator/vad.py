"""Energy-based voice activity detection over PCM16 LE mono 24 kHz, evaluated in audio time.

Every decision is made on 10 ms frames counted in samples, never on the wall clock, so a client that
sends faster or slower than real time sees the same events at the same `audio_*_ms` values.

Threshold mapping: the service's `threshold` (0..1) becomes a frame RMS level of
`80 * (threshold - 1)` dBFS, i.e. 0.0 -> -80 dBFS (almost anything), 0.5 -> -40 dBFS (normal speech
at -30..-10 dBFS is detected, room noise below -50 dBFS is not), 1.0 -> 0 dBFS (full scale only).
"""

from __future__ import annotations

import math
import operator
import sys
from dataclasses import dataclass

from ..protocol import SAMPLE_RATE

FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms
FRAME_MS = 10

if sys.version_info >= (3, 12):
    sum_of_squares = lambda frame: math.sumprod(frame, frame)  # noqa: E731 - C speed where available
else:
    sum_of_squares = lambda frame: sum(map(operator.mul, frame, frame))  # noqa: E731


def threshold_to_dbfs(threshold: float) -> float:
    return 80.0 * (threshold - 1.0)


@dataclass(slots=True)
class VadParams:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    @property
    def frame_energy_floor(self) -> float:
        """Sum of squared samples a 10 ms frame needs to count as speech."""
        level = 32768.0 * 10 ** (threshold_to_dbfs(self.threshold) / 20)
        return level * level * FRAME_SAMPLES


@dataclass(slots=True)
class VadEvent:
    kind: str  # "start" | "stop"
    sample: int  # absolute position: where speech starts (onset) or where the stop was decided


class EnergyVad:
    """Feeds on 10 ms frames; reports speech onsets and stops (after `silence_duration_ms` of non-speech)."""

    __slots__ = ("params", "_floor", "in_speech", "_silent_frames", "_silence_frames_needed")

    def __init__(self, params: VadParams):
        self.params = params
        self._floor = params.frame_energy_floor
        self._silence_frames_needed = max(1, math.ceil(params.silence_duration_ms / FRAME_MS))
        self.in_speech = False
        self._silent_frames = 0

    @property
    def silence_samples(self) -> int:
        """How much trailing non-speech a stop decision includes."""
        return self._silence_frames_needed * FRAME_SAMPLES

    def reset(self) -> None:
        self.in_speech = False
        self._silent_frames = 0

    def frame(self, samples, start_sample: int) -> VadEvent | None:
        """Classify one 10 ms frame beginning at absolute sample `start_sample`."""
        loud = sum_of_squares(samples) >= self._floor
        if not self.in_speech:
            if loud:
                self.in_speech, self._silent_frames = True, 0
                return VadEvent("start", start_sample)
            return None
        if loud:
            self._silent_frames = 0
            return None
        self._silent_frames += 1
        if self._silent_frames >= self._silence_frames_needed:
            self.reset()
            # Like the service, the stop point includes the configured silence: it is the end of
            # the audio the decision was made on.
            return VadEvent("stop", start_sample + FRAME_SAMPLES)
        return None
