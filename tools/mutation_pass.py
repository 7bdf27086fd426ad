"""A small mutation pass: does the test suite notice when the code is changed on purpose?

Usage (from the repository root)::

    python tools/mutation_pass.py                      # mutate this checkout
    python tools/mutation_pass.py --root /tmp/other    # mutate another checkout (e.g. an older commit)
    python tools/mutation_pass.py --max-mutants 60 --seed 0 --json out.json

What it does:

1. Copies the repository (``scoringrules_torch/``, ``tests/``, ``pyproject.toml``) of ``--root`` to a temporary
   directory, and checks that ``import scoringrules_torch`` there imports the copy.
2. Lists the mutants of the target files (default: ``scoringrules_torch/scores/*.py`` and
   ``scoringrules_torch/_internal/checks.py``), one simple change each, found on the syntax tree:

   * ``cmp``: a comparison operator flipped (``<`` -> ``>=``, ``==`` -> ``!=``, ``in`` -> ``not in``, ...);
   * ``arith``: an arithmetic operator swapped (``+`` <-> ``-``, ``*`` <-> ``/``);
   * ``bool``: ``and`` <-> ``or``, or a ``not`` dropped;
   * ``kwarg``: one keyword argument dropped from a call;
   * ``return``: a returned expression replaced by ``None`` (or by the first argument of the function).

   Code inside f-strings (error messages) and annotations is not mutated. A fixed ``--seed`` samples
   ``--max-mutants`` of them.
3. For each mutant, writes the mutated file into the copy (through ``ast.unparse``; the unmutated file is
   round-tripped the same way and must pass first) and runs the test selection with ``pytest -x`` in a fresh
   process forked from a parent that has already imported ``torch`` (so each run pays for the tests only).
   A mutant is *killed* if the tests fail (or time out), *survived* otherwise.
4. Prints the survival rate and every surviving mutant (file, line, description), for a person to judge which
   are equivalent (no behaviour change) and which show a missing test.

The test selection (``--tests``) defaults to the fast files that exercise these modules, where they exist in
the checkout: ``tests/test_modules.py``, ``tests/test_validation.py``, the Module and error tests of
``tests/test_sample_scores_behaviour.py`` (as node ids), and the doctests of the mutated file.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_TARGETS = ["scoringrules_torch/scores/*.py", "scoringrules_torch/_internal/checks.py"]
# Module, argument and error tests of the behaviour file (its gradient/precision tests are slow and unrelated),
# as node ids: pytest's -k would filter every file of the run, not one.
_BEHAVIOUR = "tests/test_sample_scores_behaviour.py::"
BEHAVIOUR_TESTS = [_BEHAVIOUR + name for name in (
    "test_modules_equal_functionals", "test_density_modules_equal_functionals", "test_shape_mismatch_message_shows_both_shapes",
    "test_fair_needs_two_members", "test_pairs_needs_even_m_and_no_weights", "test_beta_outside_range",
    "test_non_positive_bandwidth", "test_unknown_estimator_kernel_reduction_list_valid_names",
    "test_integer_dtypes_rejected", "test_bad_weights_and_p", "test_sample_dim", "test_reductions",
)]
DEFAULT_TESTS = ["tests/test_modules.py", "tests/test_validation.py", *BEHAVIOUR_TESTS]

_FLIP_CMP = {
    ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
_SWAP_ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


@dataclass
class Mutant:
    file: str
    index: int  # position of the mutated node in the walk order of ast.walk
    kind: str
    line: int
    description: str
    outcome: str = ""
    seconds: float = 0.0


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside f-strings and annotations (messages and types: not behaviour)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        roots = []
        if isinstance(node, ast.JoinedStr):
            roots.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots += [a.annotation for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs
                      if a.annotation is not None]
            if node.returns is not None:
                roots.append(node.returns)
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        for r in roots:
            skip.update(id(n) for n in ast.walk(r))
    return skip


def _enclosing_functions(tree: ast.AST) -> dict[int, ast.FunctionDef]:
    """id of every node -> the innermost function that contains it."""
    out: dict[int, ast.FunctionDef] = {}

    def visit(node: ast.AST, fn) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else fn
            if inner is not None:
                out[id(child)] = inner
            visit(child, inner)

    visit(tree, None)
    return out


def _mutations_of(node: ast.AST, fn: ast.FunctionDef | None) -> list[tuple[str, str, object]]:
    """(kind, description, payload) for every mutation of one node."""
    muts: list[tuple[str, str, object]] = []
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            if type(op) in _FLIP_CMP:
                new = _FLIP_CMP[type(op)]
                muts.append(("cmp", f"{type(op).__name__} -> {new.__name__}", ("cmp", k)))
    elif isinstance(node, ast.BinOp) and type(node.op) in _SWAP_ARITH:
        new = _SWAP_ARITH[type(node.op)]
        muts.append(("arith", f"{type(node.op).__name__} -> {new.__name__}", ("arith", None)))
    elif isinstance(node, ast.BoolOp):
        new = "Or" if isinstance(node.op, ast.And) else "And"
        muts.append(("bool", f"{type(node.op).__name__} -> {new}", ("bool", None)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        muts.append(("bool", "not dropped", ("not", None)))
    elif isinstance(node, ast.Call):
        for k, kw in enumerate(node.keywords):
            if kw.arg is not None:
                muts.append(("kwarg", f"keyword {kw.arg}= dropped", ("kwarg", k)))
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            muts.append(("return", "return None", ("return", None)))
        args = [] if fn is None else [a.arg for a in fn.args.posonlyargs + fn.args.args if a.arg not in ("self", "cls")]
        if args and not (isinstance(node.value, ast.Name) and node.value.id == args[0]):
            muts.append(("return", f"return {args[0]}", ("return_arg", args[0])))
    return muts


def _apply(node: ast.AST, payload) -> None:
    what, k = payload
    if what == "cmp":
        node.ops[k] = _FLIP_CMP[type(node.ops[k])]()
    elif what == "arith":
        node.op = _SWAP_ARITH[type(node.op)]()
    elif what == "bool":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif what == "kwarg":
        del node.keywords[k]
    elif what == "return":
        node.value = ast.Constant(value=None)
    elif what == "return_arg":
        node.value = ast.Name(id=k, ctx=ast.Load())


def _drop_not(tree: ast.AST, target: ast.UnaryOp) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, field, target.operand)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is target:
                        value[i] = target.operand
                        return


def list_mutants(root: Path, rel: str) -> list[Mutant]:
    tree = ast.parse((root / rel).read_text())
    skip = _skipped_nodes(tree)
    fns = _enclosing_functions(tree)
    mutants = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        for kind, desc, payload in _mutations_of(node, fns.get(id(node))):
            m = Mutant(rel, index, kind, getattr(node, "lineno", 0), desc)
            m._payload = payload  # type: ignore[attr-defined]
            mutants.append(m)
    return mutants


def mutated_source(root: Path, mutant: Mutant) -> str:
    tree = ast.parse((root / mutant.file).read_text())
    node = list(ast.walk(tree))[mutant.index]
    payload = mutant._payload  # type: ignore[attr-defined]
    if payload[0] == "not":
        _drop_not(tree, node)
    else:
        _apply(node, payload)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def roundtrip_source(root: Path, rel: str) -> str:
    return ast.unparse(ast.parse((root / rel).read_text())) + "\n"


def copy_repo(root: Path, dest: Path) -> None:
    for name in ("scoringrules_torch", "tests"):
        shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(root / "pyproject.toml", dest / "pyproject.toml")


def test_args(copy_root: Path, selection: list[str], mutated_file: str | None) -> list[str]:
    args: list[str] = []
    for item in selection:  # node ids "path::test" or paths; those whose file is missing are skipped
        if (copy_root / item.split("::")[0]).exists():
            args.append(item)
    if mutated_file is not None:
        args.append(mutated_file)  # its doctests (pytest runs --doctest-modules)
    return args


def _run_pytest_forked(copy_root: Path, args: list[str], timeout: float) -> int:
    """Run pytest on ``args`` in a child forked from this process (torch already imported here)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.chdir(copy_root)
            sys.path.insert(0, str(copy_root))
            import pytest

            code = int(pytest.main(["-q", "-x", "-p", "no:cacheprovider", *args]))
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.05)


def _run_pytest_subprocess(copy_root: Path, args: list[str], timeout: float) -> int:
    env = dict(os.environ, PYTHONPATH=str(copy_root), OMP_NUM_THREADS="1")
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args],
                              cwd=copy_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -9


def check_import_location(copy_root: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(copy_root))
    out = subprocess.run([sys.executable, "-c", "import scoringrules_torch; print(scoringrules_torch.__file__)"],
                         cwd=copy_root, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy_root.resolve()):
        raise SystemExit(f"the copy is not what gets imported: scoringrules_torch from {out}, copy at {copy_root}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    parser.add_argument("--tests", nargs="+", default=DEFAULT_TESTS,
                        help="test paths or node ids; those whose file is missing are skipped")
    parser.add_argument("--max-mutants", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant (a timeout kills it)")
    parser.add_argument("--no-fork", action="store_true", help="one fresh interpreter per mutant (slower)")
    parser.add_argument("--json", type=Path, help="write every mutant and its outcome here")
    opts = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = opts.root.resolve()
    files = sorted({str(p.relative_to(root)) for pattern in opts.targets for p in root.glob(pattern)
                    if p.name != "__init__.py"})
    mutants = [m for rel in files for m in list_mutants(root, rel)]
    total = len(mutants)
    rng = random.Random(opts.seed)
    chosen = sorted(rng.sample(mutants, min(opts.max_mutants, total)), key=lambda m: (m.file, m.line, m.index))
    print(f"{total} mutants in {len(files)} files ({', '.join(files)}); running {len(chosen)} (seed {opts.seed})")

    work = Path(tempfile.mkdtemp(prefix="mutation-"))
    try:
        copy_repo(root, work)
        print(f"copy at {work}; imports {check_import_location(work)}")
        run = _run_pytest_subprocess
        if not opts.no_fork:
            import torch  # noqa: F401  (imported once in the parent: every forked run skips it)

            torch.set_num_threads(1)
            run = _run_pytest_forked
        # baseline: the round-tripped, unmutated files must pass their selection
        for rel in files:
            (work / rel).write_text(roundtrip_source(root, rel))
            code = run(work, test_args(work, opts.tests, rel), opts.timeout * 3)
            if code != 0:
                raise SystemExit(f"the unmutated selection fails for {rel} (exit {code}); fix that first")
        start = time.monotonic()
        for i, m in enumerate(chosen, 1):
            original = (work / m.file).read_text()
            (work / m.file).write_text(mutated_source(root, m))
            t0 = time.monotonic()
            code = run(work, test_args(work, opts.tests, m.file), opts.timeout)
            m.seconds = round(time.monotonic() - t0, 1)
            m.outcome = "survived" if code == 0 else ("timeout" if code == -9 else "killed")
            (work / m.file).write_text(original)
            print(f"[{i}/{len(chosen)}] {m.outcome:8s} {m.file}:{m.line} {m.kind}: {m.description} ({m.seconds}s)",
                  flush=True)
        elapsed = time.monotonic() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)

    survived = [m for m in chosen if m.outcome == "survived"]
    rate = len(survived) / max(1, len(chosen))
    print(f"\nsurvived {len(survived)}/{len(chosen)} = {rate:.1%} ({elapsed:.0f} s)")
    for m in survived:
        print(f"  SURVIVED {m.file}:{m.line} {m.kind}: {m.description}")
    if opts.json:
        opts.json.write_text(json.dumps({
            "root": str(root), "seed": opts.seed, "total_mutants": total, "run": len(chosen),
            "survived": len(survived), "rate": rate, "seconds": round(elapsed),
            "mutants": [asdict(m) for m in chosen],
        }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
