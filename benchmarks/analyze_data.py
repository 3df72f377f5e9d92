"""Generate a large Altur call export (SPEC §7.2) for the `herald analyze` benchmark.

Seeded and deterministic. About 0.5% of answered calls carry a billing mistake so the cost audit has work to do.
Run directly: `python benchmarks/analyze_data.py OUT.csv [ROWS]`.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

HEADER = (
    "campaign_name,campaign_date,id,number_to,contact_name,type,status,answered_by,created_at,started_at,ended_at,"
    "duration,billed_duration,recording_url,interested,callback_requested,do_not_call,email,preferred_date,notes"
)
_NAMES = ("Ana López", "Bruno Díaz", "Carla Ruiz", "Diego Pérez", "Elena Soto", "Fabián Ortega", "Gabriela Núñez")
_NOTES = ("Pidió llamar más tarde", "Interesado en el plan anual", 'Dijo ""no gracias""', "Preguntó por precios, envío")


def _mmss(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{minutes:02d}:{secs:02d}"


def write_call_export(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` call rows to `path` (UTF-8, CRLF, RFC 4180 quoting where needed)."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 9, 0, 0)
    fmt = "%Y-%m-%d %H:%M:%S"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\r\n")
        lines: list[str] = []
        for i in range(rows):
            created = start + timedelta(seconds=i * 2 + rng.randrange(2))
            draw = rng.random()
            if draw < 0.45:
                status, answered_by, duration = "ended", "human", rng.randrange(5, 600)
            elif draw < 0.70:
                status, answered_by, duration = "ended", "machine", rng.randrange(3, 60)
            elif draw < 0.75:
                status, answered_by, duration = "ended", "unknown", rng.randrange(1, 120)
            else:
                status, answered_by, duration = rng.choice(("no-answer", "busy", "failed")), "", 0
            billed = min(duration, 5) if answered_by == "machine" else duration
            if answered_by and rng.random() < 0.005:
                billed += rng.randrange(1, 30)  # a billing mistake for the audit to find
            if answered_by:
                started = created + timedelta(seconds=rng.randrange(3, 25))
                ended = started + timedelta(seconds=duration)
                started_text, ended_text = started.strftime(fmt), ended.strftime(fmt)
                recording = f"https://storage.example.com/recordings/cll_{i:08d}.mp3"
            else:
                started_text, ended_text, recording = "", (created + timedelta(seconds=30)).strftime(fmt), ""
            human = answered_by == "human"
            interested = human and rng.random() < 0.3
            lines.append(
                f"Campaña Marzo,2026-03-01,cll_{i:08d},+52155{rng.randrange(10**8):08d},{rng.choice(_NAMES)},outbound,"
                f"{status},{answered_by},{created.strftime(fmt)},{started_text},{ended_text},"
                f"{_mmss(duration)},{_mmss(billed)},{recording},{interested},{human and rng.random() < 0.1},"
                f"{rng.random() < 0.02},{f'cliente{i}@example.com' if interested else ''},"
                f"{'2026-04-0' + str(rng.randrange(1, 10)) if interested else ''},"
                f'"{rng.choice(_NOTES) if human else ""}"\r\n'
            )
            if len(lines) >= 10_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)


if __name__ == "__main__":
    write_call_export(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
