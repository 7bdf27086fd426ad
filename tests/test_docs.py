"""Tests of the documentation: the API reference is complete, the site builds with warnings as errors, the
tutorial code runs and prints what the page says, and the benchmark charts come from the results files."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import scoringrules_torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API_PAGE = DOCS / "api.md"
PUBLIC_ROOTS = (
    "scoringrules_torch",
    "scoringrules_torch.functional",
    "scoringrules_torch.heads",
    "scoringrules_torch.testing",
)
_DIRECTIVE = re.compile(
    r"^[ \t]*\.\.[ \t]+(autofunction|autoclass|autodata|automodule|autoexception|currentmodule)::[ \t]+(\S+)[ \t]*$",
    re.MULTILINE,
)


# ------------------------------------------------------------------------------------------ API reference


def public_modules() -> list[str]:
    """The four public packages and every module below them whose dotted path has no ``_private`` part."""
    names = set(PUBLIC_ROOTS)
    for info in pkgutil.walk_packages(scoringrules_torch.__path__, "scoringrules_torch."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.add(info.name)
    return sorted(names)


def public_names() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for every name of every public ``__all__``."""
    out = []
    for mod_name in public_modules():
        module = importlib.import_module(mod_name)
        for name in getattr(module, "__all__", ()):
            out.append((mod_name, name, getattr(module, name)))
    return out


def _resolve(directive: str, current: str, target: str) -> object:
    """The object a directive documents, found the way autodoc finds it.

    ``automodule`` imports its target; the others take ``currentmodule`` (or the longest importable prefix of an
    absolute target) as the module and look the rest up as attributes, so a function that shadows a submodule
    of the same name (``functional.crps``) resolves to the function, as it does for users.
    """
    if directive == "automodule":
        return importlib.import_module(target)
    if current and not target.startswith("scoringrules_torch"):
        module, attrs = importlib.import_module(current), target.split(".")
    else:
        parts = target.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                module = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            attrs = parts[cut:]
            break
        else:
            raise ImportError(f"cannot import a module for {target!r} (no currentmodule set)")
    obj = module
    for attr in attrs:
        obj = getattr(obj, attr)
    return obj


def documented_objects(text: str) -> list[tuple[str, str, object]]:
    """``(directive, full path, object)`` of every autodoc directive in a reST/MyST source.

    Targets are resolved like Sphinx does: relative to the last ``.. currentmodule::``.
    """
    current = ""
    out = []
    for directive, target in _DIRECTIVE.findall(text):
        if directive == "currentmodule":
            current = target
            continue
        full = target if target.startswith("scoringrules_torch") or not current else f"{current}.{target}"
        out.append((directive, full, _resolve(directive, current, target)))
    return out


def missing_names(text: str, names: list[tuple[str, str, object]]) -> list[str]:
    """The ``module.name`` entries of ``names`` that no autodoc directive of ``text`` documents.

    An entry counts as documented when a directive's target ends in ``.name`` and resolves to the same object
    (so a stale entry pointing at an old object, or a name documented under another object, does not count).
    """
    documented = documented_objects(text)
    missing = []
    for mod_name, name, obj in names:
        ok = any(
            full.rsplit(".", 1)[-1] == name and (target is obj or (not callable(obj) and target == obj))
            for _, full, target in documented
        )
        if not ok:
            missing.append(f"{mod_name}.{name}")
    return missing


def test_public_modules_cover_the_four_packages():
    mods = public_modules()
    assert set(PUBLIC_ROOTS) <= set(mods)
    assert not [m for m in mods if "._" in m]


def test_every_public_name_is_in_the_api_reference():
    names = public_names()
    assert len(names) > 40  # the four packages' __all__ at least
    missing = missing_names(API_PAGE.read_text(encoding="utf-8"), names)
    assert not missing, (
        f"these public names have no autodoc entry in {API_PAGE.relative_to(ROOT)}: {missing}; add an "
        "'.. autofunction::' / '.. autoclass::' / '.. autodata::' / '.. automodule::' line for each"
    )


def test_api_checker_catches_a_missing_or_wrong_entry():
    from scoringrules_torch.functional.energy import energy_score, energy_score_terms

    names = [("m", "energy_score", energy_score), ("m", "energy_score_terms", energy_score_terms)]
    text = ".. currentmodule:: scoringrules_torch.functional.energy\n\n.. autofunction:: energy_score\n"
    assert missing_names(text, names) == ["m.energy_score_terms"]
    # a directive with the right last name but another object does not count
    wrong = ".. autofunction:: scoringrules_torch.functional.crps_sample.crps_ensemble\n"
    assert missing_names(wrong, [("m", "crps_ensemble", energy_score)]) == ["m.crps_ensemble"]
    # without currentmodule a bare name does not resolve
    with pytest.raises(ImportError):
        documented_objects(".. autofunction:: energy_score\n")


def test_api_reference_entries_all_resolve_and_are_unique():
    documented = documented_objects(API_PAGE.read_text(encoding="utf-8"))
    paths = [full for _, full, _ in documented]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    assert not duplicates, f"documented twice (Sphinx warns about duplicate descriptions): {duplicates}"


# ------------------------------------------------------------------------------------------ site structure


def _toctree_entries(text: str) -> list[str]:
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.append(line)
    return entries


def test_every_page_is_in_a_toctree():
    pages = {
        p.relative_to(DOCS).with_suffix("").as_posix()
        for p in DOCS.rglob("*.md")
        if not any(part.startswith("_") for part in p.relative_to(DOCS).parts)
    }
    linked = {"index"}
    for page in pages:
        base = Path(page).parent
        for entry in _toctree_entries((DOCS / f"{page}.md").read_text(encoding="utf-8")):
            linked.add((base / entry).as_posix())
    assert pages - linked == set(), f"pages that no toctree lists: {sorted(pages - linked)}"
    assert linked - pages == set(), f"toctree entries without a page: {sorted(linked - pages)}"


def test_required_pages_have_content():
    for page in ("index", "getting-started", "theory", "estimators", "benchmarks", "api", "scores/index",
                 "scores/energy", "scores/crps", "scores/kernel", "scores/variogram"):
        text = (DOCS / f"{page}.md").read_text(encoding="utf-8")
        assert len(text) > 1500, f"docs/{page}.md looks like a stub ({len(text)} characters)"


# ------------------------------------------------------------------------------------------ figures


def _load_chart_script():
    path = DOCS / "_scripts" / "benchmark_charts.py"
    spec = importlib.util.spec_from_file_location("benchmark_charts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_markdown_table_parser_reads_the_results_format():
    charts = _load_chart_script()
    text = "# T\n\n## Case A\n\n| impl | ms |\n|---|---:|\n| ours | 1.5 |\n| peer | 3 |\n\ntext\n"
    tables = charts.markdown_tables(text)
    assert tables == [("Case A", ["impl", "ms"], [["ours", "1.5"], ["peer", "3"]])]


def test_every_chart_on_the_benchmarks_page_is_made_by_the_script(tmp_path):
    pytest.importorskip("matplotlib", reason="the chart script needs matplotlib (the docs extra)")
    charts = _load_chart_script()
    written = charts.main(["--out", str(tmp_path)])
    assert written, "the chart script wrote no figure"
    made = {p.name for p in written}
    assert all((tmp_path / name).stat().st_size > 1000 for name in made)
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    direct = set(re.findall(r"\]\(_static/(bench_[\w-]+\.png)\)", page))  # always shown
    optional = set(re.findall(r"<!-- chart: (bench_[\w-]+\.png) -->", page))  # shown once their results exist
    committed = {p.name for p in (DOCS / "_static").glob("bench_*.png")}
    assert direct, "docs/benchmarks.md shows no chart"
    assert direct <= made, f"charts on the page that the script does not make: {sorted(direct - made)}"
    assert made <= direct | optional, f"charts the script makes that the page never shows: {sorted(made - direct - optional)}"
    assert made <= committed, f"charts made from the current results but not committed: {sorted(made - committed)}"
    assert committed <= made, f"committed charts that the current results do not produce: {sorted(committed - made)}"


# ------------------------------------------------------------------------------------------ slow: build, tutorial


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx", reason="the docs build needs the docs extra")
    pytest.importorskip("myst_parser", reason="the docs build needs the docs extra")
    pytest.importorskip("furo", reason="the docs build needs the docs extra")
    # built as CI builds it and as a reader without network gets it (no intersphinx downloads)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCORINGRULES_TORCH_DOCS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d",
           str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    html = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for anchor in ("functional.energy_score", "EnergyScore", "heads.ImplicitGeneratorHead",
                   "testing.assert_strictly_proper", "functional.crps"):
        assert f'id="scoringrules_torch.{anchor}"' in html, f"no entry for {anchor} in the built API page"
    bench = (tmp_path / "html" / "benchmarks.html").read_text(encoding="utf-8")
    assert "<!-- results:" not in bench and "bench_heads.png" in bench
    assert_math_renders_offline(tmp_path / "html")


_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)


def assert_math_renders_offline(html_dir: Path) -> None:
    """Every page with math loads MathJax from the site itself: a relative path to a script that was copied into
    ``_static``, and no page loads any script from the network (the pages are read offline too)."""
    pages = sorted(html_dir.rglob("*.html"))
    with_math = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        sources = _SCRIPT_SRC.findall(text)
        remote = [s for s in sources if re.match(r"(?i)(https?:)?//", s)]
        assert not remote, f"{page.relative_to(html_dir)} loads scripts from the network: {remote}"
        if 'class="math' not in text:
            continue
        with_math += 1
        mathjax = [s for s in sources if "mathjax" in s.lower()]
        assert mathjax, f"{page.relative_to(html_dir)} has math but loads no MathJax script"
        for src in mathjax:
            target = (page.parent / src.split("?")[0]).resolve()
            assert target.is_relative_to((html_dir / "_static").resolve()), (page, src)
            assert target.is_file() and target.stat().st_size > 100_000, f"{src} (from {page.name}) is missing"
    # the theory page, the score pages and the API reference all carry formulas
    assert with_math >= 5, f"only {with_math} built pages contain math"


def test_offline_math_check_catches_a_cdn_script_and_a_missing_file(tmp_path):
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex-svg.js").write_text("x" * 200_000)
    page = '<span class="math notranslate nohighlight">\\(x\\)</span><script defer="defer" src="{}"></script>'
    for i in range(5):
        (tmp_path / f"p{i}.html").write_text(page.format("_static/mathjax/tex-svg.js"))
    assert_math_renders_offline(tmp_path)  # the good site passes
    (tmp_path / "p0.html").write_text(page.format("https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"))
    with pytest.raises(AssertionError, match="from the network"):
        assert_math_renders_offline(tmp_path)
    (tmp_path / "p0.html").write_text(page.format("_static/mathjax/tex-chtml.js"))
    with pytest.raises(AssertionError, match="is missing"):
        assert_math_renders_offline(tmp_path)


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.slow
def test_getting_started_code_runs_and_prints_what_the_page_says():
    blocks = _python_blocks(DOCS / "getting-started.md")
    assert len(blocks) == 2
    namespace: dict = {"__name__": "getting_started"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "getting-started.md", "exec"), namespace)  # noqa: S102
    text = out.getvalue()
    p_upper = float(re.search(r"P\(y2 > 0 \| x = 0.5\) = ([\d.]+)", text).group(1))
    mean_abs = float(re.search(r"E\|y2\| given x = 0.5\s+= ([\d.]+)", text).group(1))
    assert abs(p_upper - 0.5) < 0.1 and abs(mean_abs - 0.75) < 0.1, text
    rows = dict(re.findall(r"^(\w+)\s+P\(y2 > 0\) = [\d.]+\s+E\|y2\| = ([\d.]+)$", text, flags=re.MULTILINE))
    assert set(rows) == {"implicit", "mixture", "gaussian", "diffusion"}, text
    for name in ("implicit", "mixture", "diffusion"):
        assert abs(float(rows[name]) - 0.75) < 0.12, text
    assert float(rows["gaussian"]) < 0.68, text  # a single Gaussian cannot separate the branches


@pytest.mark.parametrize("page", ["scores/energy", "scores/crps", "scores/kernel", "scores/variogram"])
def test_score_page_examples_run(page):
    pytest.importorskip("scoringrules", reason="the pages compare with scoringrules (the test extra)")
    blocks = _python_blocks(DOCS / f"{page}.md")
    assert len(blocks) >= 3, f"docs/{page}.md has fewer examples than expected"
    for i, block in enumerate(blocks):
        torch_seed = {"__name__": f"docs_{page.replace('/', '_')}_{i}"}
        exec(compile(block, f"docs/{page}.md[{i}]", "exec"), torch_seed)  # noqa: S102
