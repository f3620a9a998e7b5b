"""Word timestamps in the transcript keeper (issue 24): an interrupted reply is cut at the last word whose
audio ended by what the tab played, with its punctuation; the tab is told that text; without timings the
character estimate stays, for the history only."""

from __future__ import annotations

from voicebridge.session.transcripts import MAX_TIMED_ITEMS, TranscriptKeeper

TEXT = "Welcome back, Ada. Your order shipped on Monday."


def keeper():
    sent, words = [], []
    keep = TranscriptKeeper(lambda role, item, text, final, **extra: sent.append((role, item, text, final, extra)),
                            on_word=lambda *word: words.append(word))
    return keep, sent, words


def stamp(keep, item, spans):
    for n, (offset, duration) in enumerate(spans):
        keep.timestamp({"item_id": item, "audio_offset_ms": offset, "audio_duration_ms": duration, "text": f"w{n}"})


SPANS = [(0, 300), (350, 200), (600, 250), (900, 300), (1250, 300), (1600, 350), (2000, 200), (2250, 400)]


def test_the_cut_keeps_the_words_whose_audio_ended_with_their_punctuation():
    keep, sent, words = keeper()
    keep.assistant_delta("a1", "r1", TEXT)
    stamp(keep, "a1", SPANS)
    assert words[:2] == [("a1", "w0", 0, 300), ("a1", "w1", 350, 550)]
    keep.response_done("r1", interrupted=True)
    keep.heard("a1", 0.5, 1000)  # "Welcome back, Ada." ended by 850 ms; "Your" ends at 1200
    (entry,) = keep.history
    assert entry.text == "Welcome back, Ada."
    assert sent[-1] == ("assistant", "a1", "Welcome back, Ada.", True, {"interrupted": True, "heard": True})


def test_timings_that_come_before_the_final_cut_what_the_tab_is_shown():
    keep, sent, _ = keeper()
    keep.assistant_delta("a1", "r1", TEXT)
    stamp(keep, "a1", SPANS)
    keep.heard("a1", 0.9, 560)
    keep.assistant_done("a1", TEXT, interrupted=True)
    assert sent[-1][2:] == ("Welcome back,", True, {"interrupted": True, "heard": True})
    assert [e.text for e in keep.history] == ["Welcome back,"]


def test_nothing_heard_keeps_nothing_and_without_timings_the_estimate_stays_history_only():
    keep, sent, _ = keeper()
    keep.assistant_delta("a1", "r1", TEXT)
    stamp(keep, "a1", SPANS)
    keep.response_done("r1", interrupted=True)
    keep.heard("a1", 0.0, 100)
    assert keep.history[-1].text == ""
    keep.assistant_delta("a2", "r2", "one two three four five six seven eight")
    keep.response_done("r2", interrupted=True)
    shown = len(sent)
    keep.heard("a2", 0.5, 1000)  # no word timings for this item: half its characters, cut at a word
    assert keep.history[-1].text == "one two three four"
    assert len(sent) == shown, "an estimate is not shown to the tab as what was heard"


def test_malformed_timestamps_are_ignored_and_timings_are_bounded():
    keep, _, words = keeper()
    keep.timestamp({"item_id": "a1", "audio_offset_ms": "soon", "audio_duration_ms": 5})
    keep.timestamp({"item_id": 7, "audio_offset_ms": 0, "audio_duration_ms": 5})
    keep.timestamp({"item_id": "a1", "audio_offset_ms": True, "audio_duration_ms": 5})
    assert words == []
    for n in range(MAX_TIMED_ITEMS + 3):
        stamp(keep, f"item{n}", [(0, 10)])
    assert len(keep._words) == MAX_TIMED_ITEMS
