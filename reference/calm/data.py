"""The corpus: the King James Bible from Debian's ``bible-kjv`` (public domain), or any local text file.

``load_kjv`` runs ``bible -f "Gen1:1-Rev22:21"``, strips the verse labels (``Ge1:1 ``) and returns the text of
each book; :func:`split_corpus` holds out whole books (by default the last four: 2 John, 3 John, Jude,
Revelation, about 3 % of the text). A local file (``--text PATH``) is split by its last ``heldout_fraction`` of
lines instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import OrderedDict
from pathlib import Path

__all__ = ["BibleMissingError", "load_kjv", "load_text_file", "split_corpus"]

_LABEL = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
KJV_RANGE = "Gen1:1-Rev22:21"


class BibleMissingError(RuntimeError):
    """The ``bible`` program of the bible-kjv package is not installed."""


def load_kjv(program: str = "bible") -> OrderedDict[str, str]:
    """Books of the KJV in canonical order, ``{abbreviation: text}``, one verse per line, labels stripped."""
    exe = shutil.which(program)
    if exe is None:
        raise BibleMissingError(
            f"the KJV corpus needs the '{program}' program of the Debian package bible-kjv, which is not "
            f"installed; install it with `sudo apt-get install -y bible-kjv` or pass --text PATH to use a "
            f"local text file"
        )
    out = subprocess.run([exe, "-f", KJV_RANGE], capture_output=True, text=True, check=True).stdout
    books: OrderedDict[str, list[str]] = OrderedDict()
    for line in out.splitlines():
        match = _LABEL.match(line)
        if match is None:
            continue
        books.setdefault(match.group(1), []).append(match.group(4).strip())
    if len(books) < 10:
        raise RuntimeError(
            f"'{program} -f {KJV_RANGE}' printed {len(books)} books; expected 66 (is bible-kjv-text "
            f"installed?)"
        )
    return OrderedDict((name, "\n".join(verses) + "\n") for name, verses in books.items())


def load_text_file(path: str | Path) -> str:
    """A local UTF-8 text file (clear errors for a missing or empty file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--text: no such file: {str(path)!r}")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise ValueError(f"--text: the file {str(path)!r} is empty")
    return text


def split_corpus(
    source: str,
    *,
    heldout_books: int = 4,
    heldout_fraction: float = 0.05,
    text_path: str | None = None,
) -> tuple[str, str, str]:
    """``(train_text, heldout_text, description)``.

    ``source="kjv"``: the last ``heldout_books`` books are held out. ``source="text"``: ``text_path`` is read
    and its last ``heldout_fraction`` of lines (at least one) are held out.
    """
    if source == "kjv":
        books = load_kjv()
        if not 1 <= heldout_books < len(books):
            raise ValueError(
                f"data.heldout_books must be in [1, {len(books) - 1}]; got {heldout_books}"
            )
        names = list(books)
        train = "".join(books[b] for b in names[:-heldout_books])
        held = "".join(books[b] for b in names[-heldout_books:])
        return train, held, f"KJV, held-out books {names[-heldout_books:]}"
    if source == "text":
        if text_path is None:
            raise ValueError("data.source='text' needs data.text_path (or --text PATH)")
        if not 0.0 < heldout_fraction < 1.0:
            raise ValueError(f"data.heldout_fraction must be in (0, 1); got {heldout_fraction}")
        lines = load_text_file(text_path).splitlines(keepends=True)
        if len(lines) < 2:
            raise ValueError(f"--text: {text_path!r} needs at least 2 lines to hold some out")
        k = max(1, round(len(lines) * heldout_fraction))
        return "".join(lines[:-k]), "".join(lines[-k:]), f"{Path(text_path).name}, last {k} lines held out"
    raise ValueError(f"data.source must be 'kjv' or 'text'; got {source!r}")
