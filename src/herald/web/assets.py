"""Static files of the web console: the package's `static/` folder, and plotly.js from the installed plotly wheel.

plotly.js (about 4.5 MB) is served under a URL that names the plotly version, with a year-long immutable cache
header, so a browser downloads it once per plotly upgrade; it is read from the wheel on first request only.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PLOTLY_URL = f"/static/vendor/plotly-{version('plotly')}.min.js"
_YEAR = "public, max-age=31536000, immutable"


def static_url(name: str) -> str:
    """The URL of a file of `static/`."""
    return f"/static/{name}"


@cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).encode()


def install(app: FastAPI) -> None:
    """Serve plotly.js and the `static/` folder."""

    @app.get(PLOTLY_URL, include_in_schema=False)
    def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": _YEAR})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
