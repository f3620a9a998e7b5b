"""The input audio buffer of one emulated session: appended audio, server VAD in audio time, commits.

Positions are absolute samples since the session started, so VAD decisions and `audio_*_ms` values
depend on the audio alone, never on how fast it arrives.
"""

from __future__ import annotations

from collections.abc import Callable

from ..protocol import SAMPLE_RATE
from .conversation import Conversation
from .records import EmulatorHost, SessionRecord, new_id
from .responses import Responder
from .vad import FRAME_SAMPLES, EnergyVad, VadParams
from .validation import RequestError

SAMPLES_PER_MS = SAMPLE_RATE // 1000
MIN_COMMIT_MS = 100

Emit = Callable[..., None]


class InputAudio:
    def __init__(self, emit: Emit, record: SessionRecord, conversation: Conversation, *, responses: Responder,
                 host: EmulatorHost):
        self._emit = emit
        self._host = host
        self._record = record
        self._conversation = conversation
        self._responses = responses
        self.buf = bytearray()
        self.buf_start = 0  # sample position of buf[0]
        self.floor = 0  # first sample not yet committed or cleared
        self.vad_pos = 0  # next sample the VAD has not looked at
        self.vad: EnergyVad | None = None
        self.prefix_samples = 0
        self.speech: tuple[int, str, int] | None = None  # (audio_start, item_id, onset) of the open turn
        self.configure_vad(record.config.get("turn_detection"))

    def _turn_detection(self) -> dict:
        return self._record.config.get("turn_detection") or {}

    def configure_vad(self, td: dict | None) -> None:
        if td is None:
            self.vad = None
        else:
            defaults = VadParams()
            params = VadParams(
                threshold=td.get("threshold", defaults.threshold),
                prefix_padding_ms=td.get("prefix_padding_ms", defaults.prefix_padding_ms),
                silence_duration_ms=td.get("silence_duration_ms", defaults.silence_duration_ms),
            )
            self.vad = EnergyVad(params)
            self.prefix_samples = int(params.prefix_padding_ms) * SAMPLES_PER_MS
        self.speech = None
        self.vad_pos = max(self.vad_pos, self.floor)

    @property
    def end(self) -> int:
        return self.buf_start + len(self.buf) // 2

    def append(self, pcm: bytes) -> None:
        self.buf += pcm
        if self.vad is None:
            return
        while self.vad_pos + FRAME_SAMPLES <= self.end:
            offset = (self.vad_pos - self.buf_start) * 2
            frame = memoryview(self.buf[offset:offset + FRAME_SAMPLES * 2]).cast("h")
            decision = self.vad.frame(frame, self.vad_pos)
            self.vad_pos += FRAME_SAMPLES
            if decision is not None:
                self._speech_start(decision.sample) if decision.kind == "start" else self._speech_stop(decision.sample)
        if self.speech is None:  # between turns only the prefix window can still become part of a turn
            self._discard_before(max(self.floor, self.vad_pos - self.prefix_samples))

    def _discard_before(self, sample: int) -> None:
        if sample > self.buf_start:
            del self.buf[:(sample - self.buf_start) * 2]
            self.buf_start = sample

    def _speech_start(self, onset: int) -> None:
        start = max(self.floor, onset - self.prefix_samples)
        item_id = new_id("item")
        self.speech = (start, item_id, onset)
        self._emit("input_audio_buffer.speech_started", audio_start_ms=start // SAMPLES_PER_MS, item_id=item_id)
        if self._responses.active is not None and self._turn_detection().get("interrupt_response", True) is not False:
            self._responses.cancel("turn_detected")

    def _speech_stop(self, stop: int) -> None:
        start, item_id, onset = self.speech
        self.speech = None
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=stop // SAMPLES_PER_MS, item_id=item_id)
        self._commit(start, stop, item_id, stop - self.vad.silence_samples - onset)
        if self._turn_detection().get("create_response", True) is not False:
            self._responses.start_when_free()

    def _commit(self, start: int, stop: int, item_id: str, speech_samples: int) -> None:
        pcm = bytes(self.buf[(start - self.buf_start) * 2:(stop - self.buf_start) * 2])
        self._discard_before(stop)
        self.floor = self.vad_pos = max(self.vad_pos, stop)
        previous = self._conversation.last_id()
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}
        self._conversation.items[item_id] = {"item": item, "audio_bytes": len(pcm)}
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        self._conversation.heard(pcm)
        if self._record.config.get("input_audio_transcription") and self._host.config.transcription_fails:
            self._emit("conversation.item.input_audio_transcription.failed", item_id=item_id, content_index=0,
                       error={"type": "transcription_error", "code": "audio_unintelligible",
                              "message": "The audio could not be transcribed.", "param": None})
        elif self._record.config.get("input_audio_transcription"):
            # No ASR here: an honest, deterministic description of what was heard instead.
            transcript = f"({speech_samples / SAMPLE_RATE:.1f} s of speech)"
            item["content"][0]["transcript"] = transcript
            self._emit("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                       transcript=transcript)

    def on_commit(self, event: dict) -> None:
        have_ms = (self.end - self.floor) // SAMPLES_PER_MS
        if have_ms < MIN_COMMIT_MS:
            raise RequestError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {have_ms:.2f}ms of audio.", "input_audio_buffer_commit_empty")
        start, item_id, _ = self.speech or (self.floor, new_id("item"), None)
        self.speech = None
        if self.vad:
            self.vad.reset()
        self.vad_pos = self.end
        self._commit(start, self.end, item_id, self.end - start)

    def on_clear(self, event: dict) -> None:
        self._discard_before(self.end)
        self.floor = self.vad_pos = self.end
        self.speech = None
        if self.vad:
            self.vad.reset()
        self._emit("input_audio_buffer.cleared")
