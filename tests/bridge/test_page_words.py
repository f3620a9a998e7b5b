"""The page's words (issue 24, words.py): every catalog has every key of the English source with the same
placeholders, every key the page's script and template ask for exists, the languages offered are the ones
the multilingual turn detection knows, and the first configured language picks the catalog (a regional
tag its base language's, one without a catalog English under lang="en")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicebridge import words
from voicebridge.capabilities import SEMANTIC_LANGUAGES
from voicebridge.protocol import FATAL_ERRORS, ErrorCode, State

PACKAGE = Path(words.__file__).resolve().parent
SCRIPTS = sorted((PACKAGE / "static" / "js").glob("*.js"))
TEMPLATE = PACKAGE / "templates" / "index.html"


def test_there_is_a_catalog_for_every_language_the_turn_detection_knows():
    assert sorted(words.catalogs()) == sorted(SEMANTIC_LANGUAGES)


@pytest.mark.parametrize("language", sorted(set(SEMANTIC_LANGUAGES) - {words.SOURCE}))
def test_every_catalog_has_every_key_with_the_same_placeholders(language):
    source = words.catalogs()[words.SOURCE]
    catalog = words.catalogs()[language]
    assert sorted(set(source) - set(catalog)) == [], f"{language}.json lacks these keys"
    assert sorted(set(catalog) - set(source)) == [], f"{language}.json has keys English has not"
    differ = {key: (sorted(words.placeholders(source[key])), sorted(words.placeholders(text)))
              for key, text in catalog.items() if words.placeholders(text) != words.placeholders(source[key])}
    assert differ == {}, f"{language}.json: placeholders differ from English (English, {language})"
    empty = [key for key, text in catalog.items() if not text.strip()]
    assert empty == []


def test_every_key_the_page_asks_for_is_in_the_source():
    source = words.catalogs()[words.SOURCE]
    asked = set()
    for script in SCRIPTS:
        asked |= set(re.findall(r"\bt\(\"([\w.]+)\"", script.read_text()))
    asked |= set(re.findall(r"words\.(?:t|markup)\(['\"]([\w.]+)['\"]", TEMPLATE.read_text()))
    assert len(asked) > 30, "the scan found the page's keys"
    # Keys built from a state's name: every state has a label and a hint.
    asked |= {f"state.{state}.{part}" for state in State for part in ("label", "hint")}
    assert sorted(asked - set(source)) == []


def test_every_error_code_has_the_pages_own_words():
    """Issue 22: the server's wording never reaches the page for a code it knows. A code that ends the
    session is a problem (title and action); one after which it goes on, a notice. resume_expired is
    answered by starting afresh, never shown."""
    source = words.catalogs()[words.SOURCE]
    missing = [f"problem.{code}" for code in sorted(FATAL_ERRORS - {ErrorCode.RESUME_EXPIRED})
               if f"problem.{code}.title" not in source or f"problem.{code}.action" not in source]
    missing += [f"notice.{code}" for code in sorted(set(ErrorCode) - FATAL_ERRORS) if f"notice.{code}" not in source]
    assert missing == []


@pytest.mark.parametrize(("languages", "lang", "conversation", "start"), [
    ((), "en", "en", "Start session"),
    (("de-DE", "en-US"), "de-DE", "de-DE", "Sitzung starten"),
    (("de-AT",), "de-AT", "de-AT", "Sitzung starten"),  # a regional tag: its base language's words
    (("en-GB",), "en-GB", "en-GB", "Start session"),
    (("nl-NL", "en-US"), "en", "nl-NL", "Start session"),  # no catalog: English words, said to be English
    (("zh-CN",), "zh-CN", "zh-CN", "开始会话"),
    (("zh-TW",), "zh-Hans", "zh-TW", "开始会话"),  # Simplified words do not claim Traditional
    (("zh-Hant-HK",), "zh-Hans", "zh-Hant-HK", "开始会话"),
])
def test_the_first_language_picks_the_words_and_their_lang(languages, lang, conversation, start):
    chosen = words.page_words(languages)
    assert (chosen.lang, chosen.conversation, chosen.t("button.start")) == (lang, conversation, start)


def test_placeholders_are_filled_and_markup_is_escaped_around_kept_values():
    german = words.page_words(("de-DE",))
    assert german.t("approval.summary", tool="delete_order", server="orders") == (
        "Der Assistent möchte delete_order auf orders verwenden")
    from markupsafe import Markup, escape

    signed = german.markup("signed_in.as", name=Markup("<b>") + escape("a<b>@contoso.com") + Markup("</b>"))
    assert str(signed) == "Angemeldet als <b>a&lt;b&gt;@contoso.com</b>"
