"""Benchmark: `herald analyze --json` on a 1,000,000-row Altur call export, next to pandas and Polars.

Usage: `.venv/bin/python benchmarks/bench_analyze.py [--rows N] [--repeat R]`

Generates `benchmarks/out/calls_<N>.csv` if missing, then runs each contender in its own process (after one warm-up
run so every contender reads from the page cache), R times, and prints best wall time, peak RSS and the ratios.
Every contender computes the same cost audit (calls, duration and billed seconds by answered_by, anomaly count, status
counts); the script checks that their answers agree before printing any figure.
Targets (issue 3): >= 5x faster than pandas, within 2x of Polars, peak RSS < 500 MB, report < 3x analyze time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from analyze_data import write_call_export  # noqa: E402  (the generator lives next to this script)

# Runs one command, prints "<wall seconds> <peak RSS KiB>": the getrusage of this wrapper's only child.
_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=open(sys.argv[0] + ".out", "w"), stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr)
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

# The same cost audit with pandas: read_csv + vectorised MM:SS parsing + groupby. `{read}` is either the plain call
# (every column, default type inference: what most scripts do) or a tuned one (five text columns).
PANDAS = """
import json, sys
import pandas as pd
df = pd.read_csv(sys.argv[1], {read})
df = df[["id", "status", "answered_by", "duration", "billed_duration"]].fillna("").astype(str)
def secs(s):
    return pd.to_numeric(s.str[:-3]) * 60 + pd.to_numeric(s.str[-2:])
d, b, who = secs(df["duration"]), secs(df["billed_duration"]), df["answered_by"]
cap = d.clip(upper=5)
anomaly = ((who == "human") & (b != d)) | ((who == "machine") & (b != cap)) \
    | ((who == "unknown") & (b != d) & (b != cap)) | ((who == "") & (b != 0))
g = pd.DataFrame({"who": who.replace("", "none"), "d": d, "b": b}).groupby("who").agg(
    calls=("d", "size"), duration_seconds=("d", "sum"), billed_seconds=("b", "sum"))
print(json.dumps({"answered_by": {k: {c: int(v) for c, v in row.items()} for k, row in g.iterrows()},
                  "anomalies": int(anomaly.sum()),
                  "status_counts": {k: int(v) for k, v in df["status"].value_counts().items()}}))
"""

# The same cost audit with a Polars lazy scan.
POLARS = """
import json, sys
import polars as pl
lf = pl.scan_csv(sys.argv[1], infer_schema=False).select("id", "status", "answered_by", "duration", "billed_duration")
def secs(c):
    return pl.col(c).str.head(-3).cast(pl.Int64) * 60 + pl.col(c).str.tail(2).cast(pl.Int64)
who = pl.col("answered_by").fill_null("")
d, b = secs("duration"), secs("billed_duration")
cap = pl.min_horizontal(d, pl.lit(5))
anomaly = ((who == "human") & (b != d)) | ((who == "machine") & (b != cap)) \
    | ((who == "unknown") & (b != d) & (b != cap)) | ((who == "") & (b != 0))
audit_q = lf.with_columns(who=who.replace("", "none"), d=d, b=b, anomaly=anomaly).group_by("who").agg(
    calls=pl.len(), duration_seconds=pl.col("d").sum(), billed_seconds=pl.col("b").sum(),
    anomalies=pl.col("anomaly").sum())
status_q = lf.group_by("status").agg(n=pl.len())
audit, status = pl.collect_all([audit_q, status_q])
print(json.dumps({"answered_by": {r["who"]: {k: int(r[k]) for k in ("calls", "duration_seconds", "billed_seconds")}
                                  for r in audit.iter_rows(named=True)},
                  "anomalies": int(audit["anomalies"].sum()),
                  "status_counts": {r["status"]: int(r["n"]) for r in status.iter_rows(named=True)}}))
"""


def measure(command: list[str], workdir: Path, name: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, and stdout of one run of `command` in a fresh process."""
    stem = workdir / name
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE.replace("sys.argv[0]", repr(str(stem))), *command],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{name} failed: {done.stderr.strip()}")
    wall, rss_kib = done.stdout.split()
    return float(wall), int(rss_kib) / 1024, Path(f"{stem}.out").read_text(encoding="utf-8")


def herald_audit(output: str) -> dict[str, object]:
    """The part of `herald analyze --json` that the other contenders compute."""
    result = json.loads(output)
    by = {k: v for k, v in result["answered_by"].items() if v["calls"]}
    return {
        "answered_by": by,
        "anomalies": result["billing_anomalies"]["count"],
        "status_counts": result["status_counts"],
    }


def machine() -> str:
    """`nproc` and CPU model, for the record."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    """Generate the data if needed, run every contender, check they agree, print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = OUT / f"calls_{args.rows}.csv"
    if not data.exists():
        print(f"generating {data} ...", flush=True)
        write_call_export(data, args.rows)
    print(f"data: {data} ({data.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows)")
    print(f"machine: {machine()}")

    herald = str(Path(sys.executable).with_name("herald"))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        report = workdir / "report.html"
        contenders = {
            "herald analyze --json": [herald, "analyze", str(data), "--json"],
            # the same command without the engine's CLI imports (SQLAlchemy etc.), to show the startup share
            "python -m herald.analytics": [sys.executable, "-m", "herald.analytics", str(data), "--json"],
            "pandas read_csv+groupby": [sys.executable, "-c", PANDAS.replace("{read}", ""), str(data)],
            "pandas tuned (usecols)": [
                sys.executable,
                "-c",
                PANDAS.replace(
                    "{read}", 'usecols=["id", "status", "answered_by", "duration", "billed_duration"], dtype=str'
                ),
                str(data),
            ],
            "polars lazy scan": [sys.executable, "-c", POLARS, str(data)],
            "herald analyze --report": [herald, "analyze", str(data), "--json", "--report", str(report)],
        }
        best: dict[str, tuple[float, float]] = {}
        outputs: dict[str, str] = {}
        for name, command in contenders.items():
            measure(command, workdir, "warmup")  # page cache and .pyc files, for every contender alike
            runs = [measure(command, workdir, "run") for _ in range(args.repeat)]
            best[name] = (min(r[0] for r in runs), max(r[1] for r in runs))
            outputs[name] = runs[-1][2]
        report_kb = report.stat().st_size / 1024

    answers = {
        "herald": herald_audit(outputs["herald analyze --json"]),
        "herald (lean)": herald_audit(outputs["python -m herald.analytics"]),
        "pandas": json.loads(outputs["pandas read_csv+groupby"]),
        "pandas tuned": json.loads(outputs["pandas tuned (usecols)"]),
        "polars": json.loads(outputs["polars lazy scan"]),
    }
    if (
        not answers["herald"]
        == answers["herald (lean)"]
        == answers["pandas"]
        == answers["pandas tuned"]
        == answers["polars"]
    ):
        raise SystemExit(f"contenders disagree: {json.dumps(answers, indent=1)}")
    print(f"all contenders agree: {answers['herald']['anomalies']:,} anomalies\n")

    print(f"{'contender':<26} {'best wall s':>11} {'peak RSS MB':>12}")
    for name, (wall, rss) in best.items():
        print(f"{name:<26} {wall:>11.2f} {rss:>12.0f}")
    analyze_s = best["herald analyze --json"][0]
    print()
    lean_s = best["python -m herald.analytics"][0]
    print(f"pandas / herald         = {best['pandas read_csv+groupby'][0] / analyze_s:.1f}x   (target >= 5x)")
    print(f"pandas / herald (lean)  = {best['pandas read_csv+groupby'][0] / lean_s:.1f}x")
    print(f"pandas tuned / herald   = {best['pandas tuned (usecols)'][0] / analyze_s:.1f}x")
    print(f"herald (lean) / polars  = {lean_s / best['polars lazy scan'][0]:.2f}x")
    print(f"herald / polars         = {analyze_s / best['polars lazy scan'][0]:.2f}x  (target <= 2x)")
    print(f"herald peak RSS         = {best['herald analyze --json'][1]:.0f} MB (target < 500 MB)")
    print(f"report / analyze        = {best['herald analyze --report'][0] / analyze_s:.2f}x  (target < 3x)")
    print(f"report size             = {report_kb:,.0f} KB (plotly.js ~4,700 KB of it)")


if __name__ == "__main__":
    main()
