"""Which writing system a piece of text is in (ISO 15924 codes), from Unicode character names; no data files.

Used by the text cue as a country prior: text in Cyrillic narrows the world to the countries whose signs use
Cyrillic (``model.geo.lexicon``), Hangul to Korea, Thai to Thailand. Latin is written almost everywhere and
carries no such prior.
"""
from __future__ import annotations

import unicodedata
from collections import Counter

# Unicode character-name prefix -> ISO 15924 script code (first match wins; CJK ideographs are "Hani")
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("LATIN", "Latn"), ("CYRILLIC", "Cyrl"), ("GREEK", "Grek"), ("ARABIC", "Arab"), ("HEBREW", "Hebr"),
    ("THAI", "Thai"), ("LAO", "Laoo"), ("KHMER", "Khmr"), ("MYANMAR", "Mymr"), ("DEVANAGARI", "Deva"),
    ("BENGALI", "Beng"), ("TAMIL", "Taml"), ("SINHALA", "Sinh"), ("GEORGIAN", "Geor"), ("ARMENIAN", "Armn"),
    ("ETHIOPIC", "Ethi"), ("TIBETAN", "Tibt"), ("TELUGU", "Telu"), ("KANNADA", "Knda"), ("MALAYALAM", "Mlym"),
    ("GUJARATI", "Gujr"), ("GURMUKHI", "Guru"), ("HANGUL", "Hang"), ("HIRAGANA", "Kana"), ("KATAKANA", "Kana"),
    ("CJK UNIFIED IDEOGRAPH", "Hani"), ("CJK COMPATIBILITY IDEOGRAPH", "Hani"),
)

# Script of a country's sign language (model.geo.lexicon) -> the character scripts it is written in
LANGUAGE_SCRIPT_CHARS: dict[str, frozenset[str]] = {
    "Jpan": frozenset({"Hani", "Kana"}), "Kore": frozenset({"Hang", "Hani"}), "Hant": frozenset({"Hani"}),
    "Hans": frozenset({"Hani"}),
}


def char_script(ch: str) -> str:
    """ISO 15924 code of one character, "" for digits, punctuation, spaces and unknown scripts."""
    if not ch.isalpha():
        return ""
    name = unicodedata.name(ch, "")
    for prefix, code in _PREFIXES:
        if name.startswith(prefix):
            return code
    return ""


def script_of(text: str, min_share: float = 0.6) -> str:
    """The script of most letters of ``text`` ("" if none reaches ``min_share`` of the letters, or no letters)."""
    counts = Counter(c for c in map(char_script, text) if c)
    if not counts:
        return ""
    code, n = counts.most_common(1)[0]
    return code if n / sum(counts.values()) >= min_share else ""


def chars_of_language_script(code: str) -> frozenset[str]:
    """Character scripts a sign-language script code stands for ("Jpan" -> Han + Kana; "Cyrl" -> Cyrl)."""
    return LANGUAGE_SCRIPT_CHARS.get(code, frozenset({code}))
