"""Print one of the README's two set-up commands: ``test`` or ``main``.

The README marks them with ``<!-- command: test -->`` / ``<!-- command: main -->`` followed by a fenced
``bash`` block holding exactly one line.  CI runs the ``test`` one; a unit test checks the format.
"""

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
PATTERN = re.compile(r"<!-- command: (\w+) -->\s*```bash\n(.+?)\n```", re.S)


def commands(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, body in PATTERN.findall(text):
        lines = [ln for ln in body.splitlines() if ln.strip()]
        if len(lines) != 1 or name in found:
            raise SystemExit(f"README command block {name!r} must be one line and appear once")
        found[name] = lines[0].strip()
    return found


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    print(commands(README.read_text())[which])
