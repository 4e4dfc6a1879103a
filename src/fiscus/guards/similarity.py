"""Rewording-robust text similarity for the loop checks: bottom-k MinHash over normalised shingles.

A loop that rewords its turns ("check the order status" → "please look up the status of that order") defeats
an exact or near-verbatim comparison. Normalising first (case, punctuation, stop words, common suffixes)
makes rewordings share most of their shingles; shingles are the words and the adjacent word pairs, so word
order still counts a little. A bottom-k sketch (one hash per shingle, the k smallest kept) estimates
the Jaccard similarity of two shingle sets in O(k). A shingle's hash is the CRC32 of its text: stable across
processes, so sketches can be compared wherever they were made. Building one stays off the per-shingle Python
path: the words are encoded once, each word's CRC is taken once, a pair's CRC continues its first word's (and a
space) over the second's bytes (`zlib.crc32(data, start)`), all mapped in C, and the k smallest are found by
filtering below a bound and sorting the few left; comparing two sketches is one set intersection.

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
from itertools import islice, repeat

SKETCH_SIZE = 64
_NUMBER_WEIGHT = 3  # extra shingles per number
_CRC_RANGE = 1 << 32
_EDGE_CHARS = 1_500  # of the head and of the tail of a long text
# Identifiers joined by - . / : (note-3-1, v1.2, a path) stay one token: a new id is new content.
_WORD = re.compile(r"\w+(?:[-./:]\w+)*+", re.UNICODE)  # possessive: a word is never given back
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
    stop, suffixes = _STOP, _SUFFIXES
    # The suffix test inline: most words end in none, and a call per word would cost more than the test.
    return [
        w if len(w) < 4 or not w.endswith(suffixes) else _stem(w) for w in _WORD.findall(text.lower()) if w not in stop
    ]


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def sketch(text: str, size: int = SKETCH_SIZE, *, numbers: bool = True) -> Sketch:
    """`numbers=False` leaves numbers out: "no rows (attempt 2)" tells nothing "no rows (attempt 1)" did not."""
    words = normalise(text)
    return _shape(words, _has_numbers(words), size, numbers)


def _has_numbers(words: list[str]) -> bool:
    return any(map(str.isdigit, words))


def _shape(words: list[str], has_numbers: bool, size: int, numbers: bool) -> Sketch:
    """The bottom-k sketch of a turn's content words. Shingles are the words, the adjacent pairs ("a b") and, per
    number, three more ("#3:0", "#3:1", "#3:2"), each hashed by the CRC32 of its text. The text is encoded once
    and each word's CRC taken once; a pair's CRC continues the first word's (and a space) over the second's
    bytes, all mapped in C: nothing is built per shingle but its hash."""
    if has_numbers and not numbers:
        words = [w for w in words if not w.isdigit()]
    data = " ".join(words).encode().split(b" ") if words else []
    crcs = list(map(zlib.crc32, data))
    shingles = set(crcs)
    shingles.update(map(zlib.crc32, islice(data, 1, None), map(zlib.crc32, repeat(b" "), crcs)))
    if has_numbers and numbers:
        # A number weighs as four shingles: "queue 3" then "queue 4" is the next step, not a rewording.
        shingles.update(zlib.crc32(f"#{w}:{i}".encode()) for w in words if w.isdigit() for i in range(_NUMBER_WEIGHT))
    if len(shingles) <= size:
        return Sketch(tuple(sorted(shingles)))
    # The k smallest of n hashes spread over 32 bits lie below about k/n of the range: keep what is under 4k/n
    # (one C-level filter) and sort those few; every hash when fewer than k are under it.
    below = sorted(filter((4 * size * _CRC_RANGE // len(shingles)).__gt__, shingles))
    return Sketch(tuple(below[:size] if len(below) >= size else sorted(shingles)[:size]))


def estimate(a: Sketch, b: Sketch, size: int = SKETCH_SIZE) -> float:
    """Estimated Jaccard similarity of the two shingle sets in [0, 1]; two empty texts score 1. The Jaccard
    of the two bottom-k sets: one intersection, cheap enough to compare a text with dozens of recent ones."""
    if a.hashes == b.hashes:
        return 1.0
    if a.empty or b.empty:
        return 0.0
    shared = len(a.members & b.members)  # |A ∪ B| = |A| + |B| - |A ∩ B|: one set operation, not two
    return shared / (len(a.hashes) + len(b.hashes) - shared)


def similar(a: str, b: str) -> float:
    """`estimate` of two texts' sketches."""
    if a == b:
        return 1.0
    return estimate(sketch(a), sketch(b))


class SketchCache:
    """The sketches of the most recent `size` distinct turns (LRU); `size=0` keeps none (every call sketches).
    A turn's content words are kept beside its sketches: its sketch without numbers is made from them, and is its
    plain sketch when it has no numbers at all."""

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
            turn = _Turn(words, _has_numbers(words))
            with self._lock:
                self.misses += 1
                self._turns[key] = turn
                if len(self._turns) > self.size:
                    self._turns.popitem(last=False)
        found = turn.sketches.get(numbers or not turn.has_numbers)
        if found is not None:
            self.hits += 1
            return found
        made = turn.sketches[numbers or not turn.has_numbers] = _shape(
            turn.words, turn.has_numbers, SKETCH_SIZE, numbers
        )
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
