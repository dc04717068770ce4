"""Run the mutants: `python -m tools.mutants [--only NAME ...] [--timeout S] [--json FILE]`.

Copies the repository once to a temporary directory, then for each mutant applies its edits
there, runs its tests against `DATABASE_URL` with `-x` (the copy's test session migrates a fresh
template database from the copy's `sql/`, so a mutated definition is what every test database
holds), records killed or survived, and restores the file. Progress goes to stdout as it runs;
the summary ends with the survivors. Exit status 1 if any mutant survived or could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.mutants.catalogue import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[2]
_IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                                  "*.pyc", "bench")


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str        # killed, survived, timeout, error
    seconds: float
    detail: str


def mutated_text(original: str, mutant: Mutant) -> str:
    text = original
    for find, replace in mutant.edits:
        if text.count(find) != 1:
            raise ValueError(f"{mutant.name}: {find!r} occurs {text.count(find)} times in {mutant.path}")
        text = text.replace(find, replace)
    return text


def _run(copy: Path, mutant: Mutant, timeout_s: float) -> Outcome:
    target = copy / mutant.path
    original = target.read_text(encoding="utf-8")
    started = time.monotonic()
    try:
        target.write_text(mutated_text(original, mutant), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
                   "--timeout", str(int(timeout_s)), *mutant.tests]
        try:
            done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout_s * 2)
        except subprocess.TimeoutExpired:
            return Outcome(mutant.name, "timeout", time.monotonic() - started, "the tests did not finish")
    finally:
        target.write_text(original, encoding="utf-8")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else done.stderr.strip()[-200:]
    failed = next((line.split(" - ")[0] for line in lines if line.startswith("FAILED ")), summary)
    status = {0: "survived", 1: "killed"}.get(done.returncode, "error")
    return Outcome(mutant.name, status, time.monotonic() - started, failed if status == "killed" else summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="mutant names (default: all)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per test (the run gets twice)")
    parser.add_argument("--json", type=Path, default=None, help="write the outcomes here")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.only is None or m.name in args.only]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:40} {mutant.path:45} {mutant.what}")
        return 0
    if not os.environ.get("DATABASE_URL"):
        print("set DATABASE_URL to a PostgreSQL server the tests may create databases on", file=sys.stderr)
        return 2
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="ledger-mutants-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=_IGNORED)
        for index, mutant in enumerate(chosen, 1):
            outcome = _run(copy, mutant, args.timeout)
            outcomes.append(outcome)
            print(f"[{index}/{len(chosen)}] {outcome.status:8} {outcome.seconds:6.1f}s  {mutant.name}: {outcome.detail}",
                  flush=True)
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    print(f"\n{killed}/{len(outcomes)} killed ({100 * killed / max(len(outcomes), 1):.1f}%), "
          f"{sum(o.seconds for o in outcomes) / 60:.1f} min")
    for outcome in outcomes:
        if outcome.status not in ("killed", "timeout"):
            print(f"  {outcome.status}: {outcome.name}: {outcome.detail}")
    if args.json is not None:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1) + "\n", encoding="utf-8")
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
