"""Rewording-robust text similarity for the loop checks: bottom-k MinHash over normalised shingles.

A loop that rewords its turns ("check the order status" → "please look up the status of that order") defeats
an exact or near-verbatim comparison. Normalising first (case, punctuation, stop words, common suffixes)
makes rewordings share most of their shingles; shingles are the words and the adjacent word pairs, so word
order still counts a little. A bottom-k sketch (one hash per shingle, the k smallest kept) estimates
the Jaccard similarity of two shingle sets in O(k) and costs one CRC per shingle to build; CRC32 is stable
across processes, so sketches can be compared wherever they were made.

Long texts are sketched from their head and tail only: a loop repeats its framing, and a 20k-token tool
result would otherwise cost milliseconds per call.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from heapq import nsmallest
from itertools import pairwise

SKETCH_SIZE = 64
_NUMBER_WEIGHT = 3
_EDGE_CHARS = 1_500  # of the head and of the tail of a long text
# Identifiers joined by - . / : (note-3-1, v1.2, a path) stay one token: a new id is new content.
_WORD = re.compile(r"\w+(?:[-./:]\w+)*", re.UNICODE)
_SUFFIXES = ("ingly", "ations", "ation", "ments", "ment", "ness", "ing", "ies", "ied", "ed", "ly", "es", "s")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "about",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "him",
        "her",
        "us",
        "them",
        "my",
        "your",
        "our",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "please",
        "kindly",
        "just",
        "also",
        "again",
        "still",
        "now",
        "ok",
        "okay",
        "hi",
        "hello",
        "thanks",
        "thank",
        "yes",
        "no",
        "not",
    ]
)


@dataclass(frozen=True, slots=True)
class Sketch:
    """The k smallest shingle hashes of a text (sorted), and whether the text had any words at all."""

    hashes: tuple[int, ...]
    members: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", frozenset(self.hashes))

    @property
    def empty(self) -> bool:
        return not self.hashes


def normalise(text: str) -> list[str]:
    """The text's content words: lower case, stop words dropped, common suffixes cut. Numbers are kept as they
    are: a page, an id or an amount that changes is what tells a step from its repeat."""
    if len(text) > 2 * _EDGE_CHARS:
        text = f"{text[:_EDGE_CHARS]} {text[-_EDGE_CHARS:]}"
    stop = _STOP
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in stop]


def _stem(word: str) -> str:
    # Most words end in none of the suffixes: one C-level check before the loop.
    if len(word) < 4 or not word.endswith(_SUFFIXES):
        return word
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def sketch(text: str, size: int = SKETCH_SIZE, *, numbers: bool = True) -> Sketch:
    """`numbers=False` leaves numbers out: "no rows (attempt 2)" tells nothing "no rows (attempt 1)" did not."""
    words = normalise(text)
    if not numbers:
        words = [w for w in words if not w.isdigit()]
    shingles = set(words)
    shingles.update(f"{a} {b}" for a, b in pairwise(words))
    # A number weighs as three shingles: "queue 3" then "queue 4" is the next step, not a rewording.
    shingles.update(f"#{w}:{i}" for w in words if w.isdigit() for i in range(_NUMBER_WEIGHT))
    hashes = {zlib.crc32(s.encode()) for s in shingles}
    return Sketch(tuple(sorted(hashes) if len(hashes) <= size else nsmallest(size, hashes)))


def estimate(a: Sketch, b: Sketch, size: int = SKETCH_SIZE) -> float:
    """Estimated Jaccard similarity of the two shingle sets in [0, 1]; two empty texts score 1. The Jaccard
    of the two bottom-k sets: one set operation, cheap enough to compare a text with dozens of recent ones."""
    if a.hashes == b.hashes:
        return 1.0
    if a.empty or b.empty:
        return 0.0
    sa, sb = a.members, b.members
    return len(sa & sb) / len(sa | sb)


def similar(a: str, b: str) -> float:
    """`estimate` of two texts' sketches."""
    if a == b:
        return 1.0
    return estimate(sketch(a), sketch(b))
