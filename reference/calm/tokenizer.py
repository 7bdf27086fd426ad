"""A byte-level BPE tokenizer trained in the job (pure Python, a few seconds on the KJV).

Why BPE rather than characters: CALM compresses K consecutive tokens into one vector; with characters a chunk
of K = 4 is less than one English word, so the autoencoder has little to compress and the continuous model
runs four times as many positions over the same text. A few hundred merges give chunks of about 3 words on
the KJV while keeping the vocabulary (and the token baseline's softmax) small enough for 2 CPU cores.

Text is pre-split GPT-2-style into words with their leading space (``" ?[A-Za-z]+"``, digits, punctuation,
whitespace runs); merges never cross a word boundary. Tokens ``0..255`` are the bytes; merge ``r`` creates
token ``256 + r``. Encoding applies each word's merges in rank order (cached per distinct word); decoding
concatenates bytes, so ``decode(encode(s)) == s`` for every string.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

__all__ = ["BPETokenizer"]

_WORD = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


class BPETokenizer:
    """Byte-level BPE: ``train(text, num_merges)``, ``encode``, ``decode``, ``save`` / ``load`` (JSON)."""

    def __init__(self, merges: list[tuple[int, int]]) -> None:
        self.merges = [tuple(map(int, p)) for p in merges]
        self.ranks = {p: i for i, p in enumerate(self.merges)}
        self.vocab: list[bytes] = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    @classmethod
    def train(cls, text: str, num_merges: int) -> BPETokenizer:
        """Learn ``num_merges`` merges on ``text`` (the most frequent adjacent pair within words, ties broken
        by the smaller pair, so training is deterministic)."""
        if isinstance(num_merges, bool) or not isinstance(num_merges, int):
            raise TypeError(f"num_merges must be an int; got {type(num_merges).__name__}")
        if num_merges < 0:
            raise ValueError(f"num_merges must be >= 0; got {num_merges}")
        if not isinstance(text, str) or not text:
            raise ValueError("the tokenizer needs a non-empty training text")
        freq = Counter(_words(text))
        words = [list(w.encode("utf-8")) for w in freq]
        counts = list(freq.values())
        pairs: Counter = Counter()
        where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for i, w in enumerate(words):
            for p in zip(w, w[1:], strict=False):
                pairs[p] += counts[i]
                where[p].add(i)
        merges: list[tuple[int, int]] = []
        for r in range(num_merges):
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], (-kv[0][0], -kv[0][1])))[0]
            if pairs[best] < 2:
                break
            new = 256 + r
            merges.append(best)
            for i in list(where[best]):
                w, c = words[i], counts[i]
                for p in zip(w, w[1:], strict=False):
                    pairs[p] -= c
                    if pairs[p] <= 0:
                        del pairs[p]
                out, j = [], 0
                while j < len(w):
                    if j + 1 < len(w) and (w[j], w[j + 1]) == best:
                        out.append(new)
                        j += 2
                    else:
                        out.append(w[j])
                        j += 1
                words[i] = out
                for p in zip(out, out[1:], strict=False):
                    pairs[p] += c
                    where[p].add(i)
            del where[best]
        return cls(merges)

    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is not None:
            return ids
        ids = list(word.encode("utf-8"))
        while len(ids) > 1:
            ranked = [(self.ranks.get(p, 1 << 30), k) for k, p in enumerate(zip(ids, ids[1:], strict=False))]
            rank, k = min(ranked)
            if rank == 1 << 30:
                break
            ids = ids[:k] + [256 + rank] + ids[k + 2:]
        self._cache[word] = ids
        return ids

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int64) of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str; got {type(text).__name__}")
        out: list[int] = []
        for w in _words(text):
            out.extend(self._encode_word(w))
        return np.asarray(out, dtype=np.int64)

    def decode(self, ids) -> str:
        """Text of token ids (invalid UTF-8 sequences, possible in sampled text, become U+FFFD)."""
        data = bytearray()
        for t in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= t < self.vocab_size:
                raise ValueError(f"token id {t} is outside the vocabulary [0, {self.vocab_size})")
            data += self.vocab[t]
        return data.decode("utf-8", errors="replace")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "byte_bpe", "merges": self.merges}))

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        data = json.loads(Path(path).read_text())
        if data.get("type") != "byte_bpe":
            raise ValueError(f"{path}: not a byte-level BPE tokenizer file")
        return cls([tuple(p) for p in data["merges"]])
