"""Deterministic contact file for the import benchmark: mixed national / E.164 formats, ~1% invalid."""

from __future__ import annotations

import csv
import random
from pathlib import Path

HEADER = ["contact", "name", "context", "id", "plan", "due_date"]
_FIRST = ["Juan", "María", "José", "Ana", "Luis", "Sofía", "Carlos", "Lucía", "Miguel", "Valentina"]
_LAST = ["Pérez", "García", "López", "Hernández", "Martínez", "González", "Rodríguez", "Sánchez"]
_INVALID = ["55 1234 567", "12345", "n/a", "+52 1 55 1234 5678", "555-0100", "+52 55 1234 56789"]


def contact_for(i: int, rng: random.Random) -> str:
    """The i-th contact string: unique number, written in one of the usual spreadsheet formats."""
    if rng.random() < 0.01:
        return rng.choice(_INVALID)
    if rng.random() < 0.5:  # two-digit area codes (Mexico City, Guadalajara, Monterrey)
        area, sub = rng.choice(["55", "33", "81"]), f"{(i * 7919 + 12345) % 10**8:08d}"
        local = [f"{sub[:4]} {sub[4:]}", f"{sub[:4]}-{sub[4:]}"]
    else:  # three-digit area codes
        area, sub = rng.choice(["222", "998", "664", "442"]), f"{(i * 7919 + 12345) % 10**7:07d}"
        local = [f"{sub[:3]} {sub[3:]}", f"{sub[:3]}-{sub[3:]}"]
    form = rng.randrange(5)
    if form == 0:
        return f"{area} {local[0]}"
    if form == 1:
        return f"+52 {area} {local[0]}"
    if form == 2:
        return f"({area}) {local[1]}"
    if form == 3:
        return f"+52{area}{sub}"
    return f"52 {area} {local[0]}"


def write_contacts(path: Path, rows: int, seed: int = 20251124) -> None:
    """Write ``rows`` contacts to ``path`` (UTF-8, comma, CRLF)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for i in range(rows):
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            context = f"Saldo: ${rng.randrange(100, 50000):,}. Vence: 2025-{rng.randrange(1, 13):02d}-15"
            writer.writerow([contact_for(i, rng), name, context, f"C{i:07d}", rng.choice("ABC"), "2025-12-01"])
    tmp.replace(path)
