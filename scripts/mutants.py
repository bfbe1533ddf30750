"""Hand-made mutation testing: does a test notice when one line of behaviour changes?

Each mutant in ``tests/mutants.toml`` names a file, one line as it is (``original``, compared
without its indentation), the line to put there instead (``mutated``) and the tests that should
catch it. One at a time, the line is replaced in the working tree, the named tests run, and the
file is put back. A mutant is *caught* when the tests fail, *survived* when they pass.

The file is always restored: in a ``finally`` (Ctrl-C, SIGTERM and SIGHUP included), and a copy
of the original is kept under ``.mutants-backup/`` first, so even after a SIGKILL the next run
(or ``scripts/mutants --restore``) puts it back before anything else.

    scripts/mutants                 every mutant
    scripts/mutants --only a,b      some of them
    scripts/mutants --check         only that every original line is still there (no tests)
    scripts/mutants --restore       put back files left mutated by a killed run
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "tests" / "mutants.toml"
BACKUP = ROOT / ".mutants-backup"
TIMEOUT_S = 300


@dataclass(frozen=True, slots=True)
class Mutant:
    id: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    occurrence: int = 1  # which match of ``original`` (1 = the first), for repeated lines
    why: str = ""


def load(path: Path = MUTANTS) -> list[Mutant]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        Mutant(
            id=m["id"],
            file=m["file"],
            original=m["original"].strip(),
            mutated=m["mutated"].strip(),
            tests=tuple(m["tests"]),
            occurrence=int(m.get("occurrence", 1)),
            why=m.get("why", ""),
        )
        for m in data["mutant"]
    ]


def locate(mutant: Mutant, text: str) -> int:
    """The index of the line to mutate; ValueError when the original line is not there."""
    lines = text.splitlines()
    found = [i for i, line in enumerate(lines) if line.strip() == mutant.original]
    if len(found) < mutant.occurrence:
        raise ValueError(f"{mutant.file}: line not found: {mutant.original!r}")
    return found[mutant.occurrence - 1]


def mutate(mutant: Mutant, text: str) -> str:
    lines = text.splitlines(keepends=True)
    i = locate(mutant, text)
    line = lines[i]
    indent = line[: len(line) - len(line.lstrip())]
    ending = "\n" if line.endswith("\n") else ""
    lines[i] = f"{indent}{mutant.mutated}{ending}"
    return "".join(lines)


# ----- restoring, whatever happens -----
def restore() -> list[str]:
    """Put back every file a previous run left mutated; the paths restored."""
    restored = []
    if not BACKUP.is_dir():
        return restored
    for saved in sorted(p for p in BACKUP.rglob("*") if p.is_file()):
        relative = saved.relative_to(BACKUP)
        (ROOT / relative).write_bytes(saved.read_bytes())
        saved.unlink()
        restored.append(str(relative))
    for folder in sorted((p for p in BACKUP.rglob("*") if p.is_dir()), reverse=True):
        folder.rmdir()
    BACKUP.rmdir()
    return restored


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_one(mutant: Mutant, python: str) -> tuple[str, float]:
    """Apply, test, restore: ("caught" | "survived" | "timeout" | "error: ...", seconds)."""
    target = ROOT / mutant.file
    original = target.read_bytes()
    mutated = mutate(mutant, original.decode("utf-8"))
    saved = BACKUP / mutant.file
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(original)  # first, so a SIGKILL during the run can be undone
    start = time.monotonic()
    try:
        target.write_text(mutated, encoding="utf-8")
        command = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests]
        try:
            done = subprocess.run(  # noqa: S603 (our own interpreter and test ids)
                command, cwd=ROOT, capture_output=True, timeout=TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - start
    finally:
        target.write_bytes(original)
        saved.unlink()
    outcome = {0: "survived", 1: "caught"}.get(done.returncode)
    if outcome is None:
        tail = done.stdout.decode(errors="replace").strip().splitlines()[-1:]
        outcome = f"error (pytest exit {done.returncode}: {' '.join(tail)[:120]})"
    return outcome, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--check", action="store_true", help="only check the original lines")
    parser.add_argument("--restore", action="store_true", help="undo a killed run")
    args = parser.parse_args(argv)
    for path in restore():
        print(f"restored {path} (left mutated by an interrupted run)")
    if args.restore:
        return 0
    mutants = load()
    if args.only:
        wanted = set(args.only.split(","))
        mutants = [m for m in mutants if m.id in wanted]
    stale = []
    for m in mutants:
        try:
            locate(m, (ROOT / m.file).read_text(encoding="utf-8"))
        except (ValueError, OSError) as err:
            stale.append(f"{m.id}: {err}")
    if stale or args.check:
        print("\n".join(stale) or f"all {len(mutants)} mutants apply")
        return 1 if stale else 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_on_signal)
    results = []
    try:
        for m in mutants:
            outcome, seconds = run_one(m, sys.executable)
            results.append(outcome)
            print(f"{outcome:9} {seconds:6.1f} s  {m.id}  ({m.file})", flush=True)
    except KeyboardInterrupt:
        print("interrupted: every file is restored", file=sys.stderr)
        return 130
    finally:
        restore()  # nothing is left in it by now; this removes the empty folders
    caught = sum(r in {"caught", "timeout"} for r in results)
    print(f"\ncaught {caught} of {len(results)} mutants")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
