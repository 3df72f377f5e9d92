"""Import benchmark: herald.imports.read_contacts vs a naive phonenumbers loop on 1,000,000 contacts.

Run: .venv/bin/python benchmarks/bench_import.py [--rows N]
The file is generated into benchmarks/out/ on first use. Both sides read the same CSV; the
naive side is csv.reader + phonenumbers.parse + is_valid_number + format_number(E164) per row.
The script fails if the two disagree on any row.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import phonenumbers
from phonenumbers import PhoneNumberFormat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from herald.imports import ImportResult, PhoneNormalizer, Reason, read_contacts
from import_data import write_contacts

T = TypeVar("T")
OUT = Path(__file__).resolve().parent / "out"
REGION = "MX"


def naive(path: Path) -> list[str | None]:
    """The straightforward way: one phonenumbers round trip per row."""
    results: list[str | None] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        column = next(reader).index("contact")
        for row in reader:
            try:
                number = phonenumbers.parse(row[column], REGION)
            except phonenumbers.NumberParseException:
                results.append(None)
                continue
            if phonenumbers.is_valid_number(number):
                results.append(phonenumbers.format_number(number, PhoneNumberFormat.E164))
            else:
                results.append(None)
    return results


def flatten(result: ImportResult) -> list[str | None]:
    """One E.164-or-None per data row, in file order, from an import result (outside the timing)."""
    by_line: dict[int, str | None] = {row.line: row.contact for row in result.rows}
    for reject in result.rejects:
        if reject.reason != Reason.INVALID_PHONE_NUMBER:
            raise SystemExit(f"unexpected reject on line {reject.line}: {reject.reason} {reject.detail}")
        by_line[reject.line] = None
    return [by_line[line] for line in range(2, len(by_line) + 2)]


def herald(path: Path) -> ImportResult:
    """The full import: decoding, CSV, E.164, duplicate checks, row objects."""
    return read_contacts(path, default_region=REGION)


def timed(label: str, func: Callable[[Path], T], path: Path, rows: int) -> tuple[T, float]:
    start = time.perf_counter()
    out = func(path)
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {rows:>9,} rows  {elapsed:7.2f} s  {rows / elapsed:>10,.0f} rows/s", flush=True)
    return out, elapsed


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    path = OUT / f"import_{args.rows}.csv"
    if not path.exists():
        print(f"generating {path} ...")
        write_contacts(path, args.rows)
    print(f"{time.strftime('%Y-%m-%d')}  nproc={os.cpu_count()}  cpu={cpu_model()}  python={platform.python_version()}")
    print(f"file: {path.name} ({path.stat().st_size / 1e6:.1f} MB), phonenumbers {phonenumbers.__version__}")
    expected, t_naive = timed("naive csv + phonenumbers loop", naive, path, args.rows)
    rss_naive = peak_rss_mb()
    result, t_herald = timed("herald read_contacts", herald, path, args.rows)
    print(f"peak RSS: {rss_naive:,.0f} MB after the naive loop, {peak_rss_mb():,.0f} MB after herald (rows kept)")
    got = flatten(result)
    del result
    mismatches = [i + 2 for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
    if mismatches:
        raise SystemExit(f"results differ on {len(mismatches)} rows, first lines: {mismatches[:10]}")
    valid = sum(1 for e in expected if e is not None)
    print(f"equal results on all {len(expected):,} rows ({valid:,} valid, {len(expected) - valid:,} invalid)")
    print(f"speed-up: {t_naive / t_herald:.1f}x")
    normalize = PhoneNormalizer(REGION)
    with path.open(encoding="utf-8", newline="") as handle:
        contacts = [row[0] for row in csv.reader(handle)][1:]
    start = time.perf_counter()
    for raw in contacts:
        normalize(raw)
    phone_only = time.perf_counter() - start
    print(
        f"phone normalisation alone: {len(contacts) / phone_only:,.0f} numbers/s "
        f"({normalize.fallbacks:,} of {len(contacts):,} fell back to phonenumbers)"
    )


if __name__ == "__main__":
    main()
