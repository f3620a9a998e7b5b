"""The page's own words in the person's language (issue 24): one JSON catalog per language in
static/words/, English the source. The server renders the page with them and embeds the same catalog in
it for the page's script, so the first paint is already in that language (docs/client.md).

The language is the first of VOICE_LIVE_LANGUAGES. A regional tag uses its base language's catalog
(de-AT reads de.json); a language without a catalog gets the English words, and then the page says
`lang="en"` for them and marks only the conversation (what the person and the assistant say) with the
configured language: no element claims a language its text is not in (screen readers pick their voice
from it, axe checks it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

CATALOGS = Path(__file__).resolve().parent / "static" / "words"
SOURCE = "en"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A catalog written in one script of a language written in two: (its script, what asks for the other).
# zh.json is Simplified Chinese; zh-TW, zh-HK, zh-MO and zh-Hant read Traditional characters, so for them
# the words claim zh-Hans, not the configured tag.
ONE_SCRIPT = {"zh": ("Hans", {"hant", "tw", "hk", "mo"})}


@cache
def catalogs() -> Mapping[str, Mapping[str, str]]:
    """Every catalog by its file's name (a base language: en, de, ...). Read once: they ship with the
    package, and a broken one is a build defect the catalog test catches."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(CATALOGS.glob("*.json"))}


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def fill(text: str, values: Mapping[str, object]) -> str:
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


@dataclass(frozen=True, slots=True)
class PageWords:
    lang: str  # the language the page's words are in: `<html lang>`
    conversation: str  # the language the conversation is expected in (the first configured one)
    words: Mapping[str, str]

    def t(self, key: str, **values: object) -> str:
        return fill(self.words[key], values)

    def markup(self, key: str, **values: Markup) -> Markup:
        """The words around `values` escaped, the values (already markup, e.g. a bold name) kept."""
        return Markup(fill(str(escape(self.words[key])), values))

    @property
    def payload(self) -> dict[str, object]:
        """What the page's script reads (words.js): the same words, and where the conversation differs."""
        return {"lang": self.lang, "conversation": self.conversation, "words": dict(self.words)}


def _script_mismatch(base: str, tag: str) -> str | None:
    """The catalog's own tag when `tag` asks for a script the catalog is not written in."""
    if base not in ONE_SCRIPT:
        return None
    written, other = ONE_SCRIPT[base]
    subtags = [s.lower() for s in tag.split("-")[1:]]
    script = next((s for s in subtags if len(s) == 4 and s.isalpha()), None)
    mismatch = script != written.lower() if script else any(s in other for s in subtags)
    return f"{base}-{written}" if mismatch else None


def page_words(languages: tuple[str, ...]) -> PageWords:
    """The page's words for VOICE_LIVE_LANGUAGES (empty: English)."""
    first = languages[0] if languages else SOURCE
    base = first.split("-")[0].lower()
    found = catalogs()
    english = found[SOURCE]
    if base not in found:
        return PageWords(lang=SOURCE, conversation=first, words=english)
    # Over English: a key a catalog has not got yet still shows words (the catalog test fails meanwhile).
    words = {**english, **found[base]}
    return PageWords(lang=_script_mismatch(base, first) or first, conversation=first, words=words)
