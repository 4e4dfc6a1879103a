"""Rewording-robust text similarity for the loop checks: bottom-k MinHash over normalised shingles.

A loop that rewords its turns ("check the order status" → "please look up the status of that order") defeats
an exact or near-verbatim comparison. Normalising first (case, punctuation, stop words, common suffixes)
makes rewordings share most of their shingles; shingles are the words and the adjacent word pairs, so word
order still counts a little. A bottom-k sketch (one hash per shingle, the k smallest kept) estimates
the Jaccard similarity of two shingle sets in O(k) and costs one CRC per shingle to build; CRC32 is stable
across processes, so sketches can be compared wherever they were made.

Long texts are sketched from their head and tail only: a loop repeats its framing, and a 20k-token tool
result would otherwise cost milliseconds per call.

A turn is usually met more than once: a tool result is both the request's last content and a progress check,
an agent's answer comes back as the other agent's request, every detector of a session chain reads the same
turn. `cached_sketch` keeps the sketches of turns already seen (keyed by a BLAKE2b digest of what a sketch reads:
the length, the head and the tail), so each call sketches only its new turns.
"""

from __future__ import annotations

import hashlib
import re
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
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
    return _shape(normalise(text), size, numbers)


def _shape(words: list[str], size: int, numbers: bool) -> Sketch:
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


class SketchCache:
    """The sketches of the most recent `size` distinct turns (LRU); `size=0` keeps none (every call sketches).
    A turn's normalised words are kept beside its sketches: its sketch without numbers is made from them, and is
    its plain sketch when it has no numbers at all."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._turns: OrderedDict[bytes, _Turn] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, text: str, *, numbers: bool = True) -> Sketch:
        if not self.size:
            return sketch(text, numbers=numbers)
        key = _turn_key(text)
        with self._lock:
            turn = self._turns.get(key)
            if turn is not None:
                self._turns.move_to_end(key)
        if turn is None:
            words = normalise(text)
            turn = _Turn(words, any(w.isdigit() for w in words))
            with self._lock:
                self.misses += 1
                self._turns[key] = turn
                if len(self._turns) > self.size:
                    self._turns.popitem(last=False)
        found = turn.sketches.get(numbers or not turn.has_numbers)
        if found is not None:
            self.hits += 1
            return found
        made = turn.sketches[numbers or not turn.has_numbers] = _shape(turn.words, SKETCH_SIZE, numbers)
        return made

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()
            self.hits = self.misses = 0


@dataclass(slots=True)
class _Turn:
    words: list[str]
    has_numbers: bool
    sketches: dict[bool, Sketch] = field(default_factory=dict)  # numbers → sketch


def _turn_key(text: str) -> bytes:
    # A sketch reads only the head and tail of a long text, so they (and the length) are all the key needs.
    digest = hashlib.blake2b(digest_size=16)
    digest.update(len(text).to_bytes(8, "little"))
    if len(text) > 2 * _EDGE_CHARS:
        digest.update(text[:_EDGE_CHARS].encode("utf-8", "surrogatepass"))
        digest.update(text[-_EDGE_CHARS:].encode("utf-8", "surrogatepass"))
    else:
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.digest()


SKETCHES = SketchCache()  # one per process: turns seen by any detector are sketched once


def cached_sketch(text: str, *, numbers: bool = True) -> Sketch:
    """`sketch(text)` from the process's cache of turns already seen."""
    return SKETCHES.get(text, numbers=numbers)
