"""Transcripts to the tab, and the run's conversation history.

The tab gets every partial and a final per item. The history keeps the finals: what the user said and
what the assistant said, an interrupted reply only as far as the user heard it, in order, bounded by
VOICEBRIDGE_HISTORY_ITEMS (the most recent). It is what the bridge replays into a new upstream session
(replay.py); like every transcript it stays out of logs and traces (telemetry records text only when
VOICEBRIDGE_TELEMETRY_TRANSCRIPTS says so).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_HISTORY = 40  # finished entries; the oldest go first, so a day-long session costs bounded memory
MAX_PENDING = 8  # places held for items whose final has not come (a VAD false start never gets one)
# Word timings kept (Azure voices report them, issue 24): for this many recent items, this many words each.
MAX_TIMED_ITEMS, MAX_TIMED_WORDS = 4, 2000
MAX_PART_ITEMS = 16  # recent assistant items whose shown content part is remembered

Emit = Callable[..., None]  # (role, item_id, text, final, **extra) -> None
WordEmit = Callable[[str, str, int, int], None]


@dataclass(slots=True)
class Entry:
    role: str
    item_id: str
    text: str
    interrupted: bool = False
    final: bool = True  # False: a place held in conversation order until the item's final arrives


class TranscriptKeeper:
    def __init__(self, emit: Emit, limit: int = DEFAULT_HISTORY, on_word: WordEmit = lambda *word: None):
        self._emit = emit
        self._on_word = on_word  # (item_id, text, start_ms, end_ms): the tab may show the word as it plays
        self._streaming: dict[str, tuple[object, str]] = {}  # assistant item id -> (response id, text so far)
        self._heard: dict[str, Callable[[str], str]] = {}  # interrupted item id -> cuts its text to what was heard
        self._exact: set[str] = set()  # items whose cut comes from word timings: the tab gets the cut text too
        self._words: dict[str, list[int]] = {}  # assistant item id -> where each word's audio ends (ms)
        self._parts: dict[str, int] = {}  # assistant item id -> the content part its words are shown from
        self._limit = limit
        self.history: deque[Entry] = deque()

    def remember(self, role: str, text: str, item_id: str = "") -> None:
        """An item the tab already shows: handed back with session.start, or a typed text."""
        self._append(Entry(role, item_id, text))

    def began(self, role: str, item_id: object) -> None:
        """An item started (the user began speaking, the assistant's first words): its place in the
        conversation is now, although its final may come after a later item's (a late user transcript,
        a reply the user talked over)."""
        if isinstance(item_id, str) and self._entry(item_id) is None:
            self._append(Entry(role, item_id, "", final=False))

    def replayable(self) -> list[Entry]:
        """The conversation so far, oldest first, without items nobody heard anything of."""
        return [entry for entry in self.history if entry.final and entry.text.strip()]

    def new_connection(self) -> None:
        """Items of the previous upstream connection will never finish."""
        self._streaming.clear()
        self._heard.clear()
        self._exact.clear()
        self._words.clear()
        self._parts.clear()
        for entry in [e for e in self.history if not e.final]:
            self.history.remove(entry)

    def user(self, item_id: object, text: object, final: bool, **extra: object) -> None:
        if isinstance(text, str) and isinstance(item_id, str):
            self._send("user", item_id, text, final, **extra)

    def assistant_delta(self, item_id: object, response_id: object, text: object, part: object = 0) -> None:
        if isinstance(text, str) and text and isinstance(item_id, str) and self._shown_part(item_id, part):
            if item_id not in self._streaming:
                self.began("assistant", item_id)
            _, so_far = self._streaming.get(item_id, (response_id, ""))
            self._streaming[item_id] = (response_id, so_far + text)
            self._send("assistant", item_id, text, False)

    def assistant_done(self, item_id: object, transcript: object, interrupted: bool, part: object = 0) -> None:
        if not isinstance(item_id, str) or not self._shown_part(item_id, part):
            return
        _, streamed = self._streaming.pop(item_id, (None, ""))
        if interrupted:
            # The user cut the reply off: show what was streamed before the interruption.
            self._send("assistant", item_id, streamed, True, interrupted=True)
        elif isinstance(transcript, str):
            self._send("assistant", item_id, transcript, True)

    def _shown_part(self, item_id: str, part: object) -> bool:
        """An item's words are shown from one content part, the first with words: a text part and an
        audio part's transcript of one item carry the same words, and both would say them twice."""
        index = part if isinstance(part, int) and not isinstance(part, bool) else 0
        if item_id not in self._parts:
            while len(self._parts) >= MAX_PART_ITEMS:
                del self._parts[next(iter(self._parts))]
            self._parts[item_id] = index
        return self._parts[item_id] == index

    def response_done(self, response_id: object, interrupted: bool) -> None:
        """Every streamed assistant transcript ends with a final, even when the service sends none
        (a cancelled response ends without response.audio_transcript.done)."""
        for item_id, (owner, text) in list(self._streaming.items()):
            if owner == response_id:
                del self._streaming[item_id]
                extra = {"interrupted": True} if interrupted else {}
                self._send("assistant", item_id, text, True, **extra)

    def timestamp(self, event: dict) -> None:
        """`response.audio_timestamp.delta`: a word of an assistant item and where its audio lies."""
        item_id, offset, duration = event.get("item_id"), event.get("audio_offset_ms"), event.get("audio_duration_ms")
        if not isinstance(item_id, str) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, duration)):
            return
        self._word(item_id, offset + duration)
        text = event.get("text")
        self._on_word(item_id, text if isinstance(text, str) else "", offset, offset + duration)

    def _word(self, item_id: str, end_ms: int) -> None:
        words = self._words.get(item_id)
        if words is None:
            while len(self._words) >= MAX_TIMED_ITEMS:
                del self._words[next(iter(self._words))]
            words = self._words[item_id] = []
        if len(words) < MAX_TIMED_WORDS:
            words.append(end_ms)

    def heard(self, item_id: str, share: float, heard_ms: int | None = None) -> None:
        """The user heard `heard_ms` (`share`) of an interrupted item's audio: its history entry keeps the
        words whose audio ended by then when the voice reported word timings, else that share of the text
        (cut at a word). With timings the tab is told the cut text too: it is exactly what was heard."""
        ends = self._words.pop(item_id, None)
        exact = ends is not None and heard_ms is not None
        if exact:
            count = sum(1 for end in ends if end <= heard_ms)
            cut: Callable[[str], str] = lambda text: _first_words(text, count)  # noqa: E731
        else:
            cut = lambda text: _cut(text, share)  # noqa: E731
        entry = self._entry(item_id)
        if entry is not None and entry.final:
            entry.text = cut(entry.text)
            if exact:
                self._emit(entry.role, item_id, entry.text, True, interrupted=True, heard=True)
        else:
            self._heard[item_id] = cut  # its final has not arrived yet
            if exact:
                self._exact.add(item_id)

    def _send(self, role: str, item_id: str, text: str, final: bool, **extra: object) -> None:
        cut = self._heard.pop(item_id, None) if final else None
        if cut is not None and item_id in self._exact:
            self._exact.discard(item_id)
            text, extra = cut(text), {**extra, "heard": True}  # the tab never sees more than was heard
        self._emit(role, item_id, text, final, **extra)
        if final:
            interrupted = bool(extra.get("interrupted"))
            kept = cut(text) if cut is not None else text
            entry = self._entry(item_id)
            if entry is None or entry.final:
                self._append(Entry(role, item_id, kept, interrupted))
            else:
                entry.text, entry.interrupted, entry.final = kept, interrupted, True
                self._trim()

    def _append(self, entry: Entry) -> None:
        self.history.append(entry)
        self._trim()

    def _trim(self) -> None:
        """At most `limit` finished entries (the most recent) and MAX_PENDING places held."""
        finals = sum(1 for e in self.history if e.final)
        pending = len(self.history) - finals
        for entry in list(self.history):
            if finals <= self._limit and pending <= MAX_PENDING:
                return
            if entry.final and finals > self._limit:
                finals -= 1
                self.history.remove(entry)
            elif not entry.final and pending > MAX_PENDING:
                pending -= 1
                self.history.remove(entry)

    def _entry(self, item_id: str) -> Entry | None:
        for entry in reversed(self.history):
            if entry.item_id == item_id:
                return entry
        return None


def _first_words(text: str, count: int) -> str:
    """The first `count` words of a text as written (its punctuation kept)."""
    if count <= 0:
        return ""
    words = text.split()
    if count >= len(words):
        return text.strip()
    end = 0
    for word in words[:count]:
        end = text.index(word, end) + len(word)
    return text[:end]


def _cut(text: str, share: float) -> str:
    """The first `share` of a text, ending at a word boundary (the text has no timings to cut closer)."""
    if share >= 1.0:
        return text
    end = int(len(text) * max(share, 0.0))
    if end < len(text) and not text[end : end + 1].isspace():
        end = text.rfind(" ", 0, end) + 1  # back to the last word boundary (0 when there is none)
    return text[:end].rstrip()
