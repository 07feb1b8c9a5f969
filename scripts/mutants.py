"""`make mutants`: plant each defect of scripts/mutants.toml, one at a time, in a throw-away copy
of the project and run the fast tests that should catch it.

A mutant is *killed* when its tests fail, *survives* when they pass, and is *stale* when its
``old`` text no longer occurs exactly once in its file (the code moved on: update the entry).
A mutant may name the environment its defect shows in (``venv``, e.g. the floor's .venv-2.11).
Prints each mutant's fate and the survival rate; exits non-zero if any survived or is stale.

Usage: scripts/mutants.py [--venv .venv] [--jobs N] [--only SUBSTRING ...] [--list]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "scripts" / "mutants.toml"
# What the tests import or read.
COPIED = ["airflow_provider_oauthcc", "tests", "devserver", "dags_examples", "pyproject.toml"]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    venv: str | None = None


def load(path: Path = MUTANTS) -> list[Mutant]:
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["mutant"]
    return [
        Mutant(e["name"], e["file"], e["old"], e["new"], tuple(e["tests"]), e.get("venv"))
        for e in entries
    ]


def copy_project(into: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)


def run_tests(copy: Path, venv: Path, tests: tuple[str, ...]) -> int:
    """pytest's exit code for ``tests`` in ``copy`` (0 passed, 1 failed, else an error)."""
    with tempfile.TemporaryDirectory(prefix="oauthcc-mutant-home-") as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The copy's package, not the project's, also in subprocesses the tests start.
            "PYTHONPATH": str(copy),
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        command = [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-x"]
        command += ["-p", "no:cacheprovider", "--timeout=120", *tests]
        # The project's own virtualenv and test files, no user input.
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, check=False)  # noqa: S603
        return done.returncode


def fate_of(copy: Path, venv: Path, mutant: Mutant) -> str:
    path = copy / mutant.file
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        return "stale"
    path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    try:
        code = run_tests(copy, venv, mutant.tests)
    finally:
        path.write_text(original, encoding="utf-8")
    return {0: "SURVIVED", 1: "killed"}.get(code, f"killed (pytest exit {code})")


def venv_of(mutant: Mutant, default: str) -> Path:
    return (ROOT / (mutant.venv or default)).resolve()


def baseline_failures(copy: Path, mutants: list[Mutant], default: str) -> list[str]:
    """The environments in which the unmutated tests already fail."""
    failing = []
    for venv in sorted({venv_of(m, default) for m in mutants}):
        tests = sorted({t for m in mutants if venv_of(m, default) == venv for t in m.tests})
        if run_tests(copy, venv, tuple(tests)) != 0:
            failing.append(f"{venv.name}: {' '.join(tests)}")
    return failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=".venv", help="virtualenv to run the tests in")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tried at once")
    parser.add_argument(
        "--only", action="append", default=[], help="only mutants whose name contains this"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    mutants = [m for m in load() if not args.only or any(s in m.name for s in args.only)]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.name}  ({mutant.file}; {', '.join(mutant.tests)})")
        return 0
    venvs = {venv_of(m, args.venv) for m in mutants}
    missing = sorted(str(venv) for venv in venvs if not venv.is_dir())
    if missing:
        print(f"missing environments (scripts/ensure-env.sh --floor makes .venv-2.11): {missing}")
        return 2
    started = time.monotonic()
    fates: dict[str, int] = {}
    printing = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="oauthcc-mutants-") as tmp:
        copies: queue.Queue[Path] = queue.Queue()
        for job in range(max(1, args.jobs)):
            copy_project(Path(tmp) / str(job))
            copies.put(Path(tmp) / str(job))
        failing = baseline_failures(Path(tmp) / "0", mutants, args.venv)
        if failing:
            print(f"the unmutated tests fail, fix them first: {failing}")
            return 2

        def try_one(mutant: Mutant) -> None:
            copy = copies.get()  # one mutant at a time in each copy
            try:
                begin = time.monotonic()
                fate = fate_of(copy, venv_of(mutant, args.venv), mutant)
            finally:
                copies.put(copy)
            with printing:
                fates[fate.split()[0]] = fates.get(fate.split()[0], 0) + 1
                print(f"{fate:<24} {time.monotonic() - begin:5.1f} s  {mutant.name}", flush=True)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(try_one, mutants))
    judged = fates.get("killed", 0) + fates.get("SURVIVED", 0)
    survived = fates.get("SURVIVED", 0)
    rate = survived / judged if judged else 0.0
    print(
        f"{len(mutants)} mutants: {fates.get('killed', 0)} killed, {survived} survived, "
        f"{fates.get('stale', 0)} stale; survival rate {rate:.0%} "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 1 if survived or fates.get("stale") else 0


if __name__ == "__main__":
    sys.exit(main())
