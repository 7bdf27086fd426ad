"""Byte-level BPE round trip and training; corpus loading and the held-out split."""

import shutil

import numpy as np
import pytest
from calm_support import one_thread_fixture, tiny_text_fixture  # noqa: F401 (fixtures)

from reference.calm import data
from reference.calm.tokenizer import BPETokenizer


def test_round_trip_and_compression(tiny_text, tmp_path):
    text = tiny_text.read_text()
    tok = BPETokenizer.train(text, 60)
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.max() < tok.vocab_size == 256 + 60
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode()) / 2  # merges compress this repetitive text
    odd = "Ünïcödé  tabs\tand\n\nnew lines, 123 numbers; and words never seen"
    assert tok.decode(tok.encode(odd)) == odd
    tok.save(tmp_path / "t.json")
    again = BPETokenizer.load(tmp_path / "t.json")
    assert again.merges == tok.merges and (again.encode(text) == ids).all()


def test_first_merge_is_the_most_frequent_pair():
    text = "ab ab ab ab cd cd x"
    tok = BPETokenizer.train(text, 1)
    # pairs within words: (a,b) x4, (' ',a) x3, (c,d) x2, (' ',c) x2 -> ab first
    assert tok.merges == [(ord("a"), ord("b"))]
    assert tok.encode("ab").tolist() == [256]
    assert BPETokenizer.train(text, 3).merges == BPETokenizer.train(text, 3).merges  # deterministic


def test_tokenizer_bad_inputs():
    with pytest.raises(TypeError, match="num_merges"):
        BPETokenizer.train("abc", 1.5)
    with pytest.raises(ValueError, match="num_merges"):
        BPETokenizer.train("abc", -1)
    with pytest.raises(ValueError, match="non-empty"):
        BPETokenizer.train("", 3)
    tok = BPETokenizer.train("abc abc", 2)
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])


def test_text_split(tiny_text):
    train, held, desc = data.split_corpus("text", text_path=str(tiny_text), heldout_fraction=0.1)
    lines = tiny_text.read_text().splitlines(keepends=True)
    assert train + held == "".join(lines) and held == "".join(lines[-30:])
    assert "30 lines" in desc


def test_split_bad_inputs(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.split_corpus("text", text_path=str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        data.split_corpus("text", text_path=str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="text_path"):
        data.split_corpus("text")
    with pytest.raises(ValueError, match="'kjv' or 'text'"):
        data.split_corpus("wiki")
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    with pytest.raises(data.BibleMissingError, match="apt-get install -y bible-kjv"):
        data.split_corpus("kjv")


@pytest.mark.skipif(shutil.which("bible") is None, reason="bible-kjv is not installed on this machine")
def test_kjv_books_and_labels_stripped():
    books = data.load_kjv()
    assert len(books) == 66 and list(books)[0] == "Ge" and list(books)[-1] == "Rev"
    assert books["Ge"].startswith("In the beginning God created the heaven and the earth.\n")
    train, held, desc = data.split_corpus("kjv", heldout_books=1)
    assert held == books["Rev"] and "Rev" in desc and "Ge1:1" not in train
