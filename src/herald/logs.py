"""Logging of `herald serve` and `herald worker`: one JSON object per line for log collectors, or human lines.

The format is JSON when stderr is not a terminal (a service manager, a container, a pipe) and text on a terminal;
`HERALD_LOG_FORMAT=json|text` decides instead. Every record passes through `Redact`, so API keys, Authorization and
signature headers, and the values of credential environment variables never reach a log line, whatever a library or
an exception message put in it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from herald.store.queries import Store

Format = Literal["json", "text"]

#: Environment variable naming the format (json or text); unset: json unless stderr is a terminal.
FORMAT_VARIABLE = "HERALD_LOG_FORMAT"
#: Environment variable with extra variable names whose values are secrets (comma-separated): the `env:NAME`
#: credentials of campaigns and integrations, found when the process starts (see `protect_references`).
PROTECT_VARIABLE = "HERALD_LOG_PROTECT"
#: What replaces a secret in a log line.
MASK = "[redacted]"

# Variables whose names say they hold a secret (AGENT_TOKEN, WHATSAPP_APP_SECRET, STRIPE_API_KEY, PGPASSWORD, …).
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASS$|KEY|CREDENTIAL|AUTH|PRIVATE|SIGNING", re.IGNORECASE)
# Values shorter than this are not masked: "1" or "yes" would blank out unrelated text.
_MIN_SECRET_LENGTH = 6
# Herald API keys (`hk_` + 43 URL-safe base64 characters), whatever text they appear in.
_API_KEY = re.compile(r"hk_[A-Za-z0-9_-]{16,}")
# A header that carries a credential, as `name: value`, `name=value` or `'name': 'value'` (dict reprs).
_HEADER = re.compile(
    r"(?P<name>authorization|proxy-authorization|x-[a-z-]*signature[a-z0-9-]*|x-api-key|cookie)"
    r"(?P<sep>['\"]?\s*[:=]\s*['\"]?)(?P<value>[^'\"\r\n,}]+)",
    re.IGNORECASE,
)
# The password of a URL (postgresql+psycopg://user:PASSWORD@host/db).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)", re.IGNORECASE)

# Attributes every LogRecord has; anything else on a record was passed with `extra=` and is logged as a field.
# uvicorn's `color_message` repeats the message with terminal colours.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """The values to mask: those of variables named like secrets and of the variables listed in HERALD_LOG_PROTECT,
    longest first (so a secret that contains another is masked whole)."""
    env = dict(os.environ if environ is None else environ)
    named = {name.strip() for name in env.get(PROTECT_VARIABLE, "").split(",") if name.strip()}
    values = {
        value
        for name, value in env.items()
        if (name in named or _SECRET_NAME.search(name)) and len(value) >= _MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret, API key, credential header value and URL password replaced by MASK."""
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    text = _API_KEY.sub(MASK, text)
    text = _HEADER.sub(lambda match: f"{match['name']}{match['sep']}{MASK}", text)
    return _URL_PASSWORD.sub(lambda match: f"{match['head']}{MASK}", text)


class Redact(logging.Filter):
    """Masks secrets in a record's message, arguments, exception text and extra fields (it never drops a record)."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.secrets = secret_values()

    def filter(self, record: logging.LogRecord) -> bool:
        # The message is rendered here, once, so that secrets inside %-arguments are masked too.
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        # The traceback is now only in exc_text: formatters must not render it again from exc_info unmasked.
        record.exc_info = None
        for key, value in _extra(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value, self.secrets))
        return True


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the record's extra fields, exception text."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extra(record).items():
            line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A human line: time, level, logger, message, then the extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in _extra(record).items())
        line = f"{_time(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f" [{fields}]"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def chosen_format(stream: Any = None) -> Format:
    """HERALD_LOG_FORMAT if set (json or text), else text on a terminal and json otherwise; ValueError if invalid."""
    given = os.environ.get(FORMAT_VARIABLE, "").strip().lower()
    if given in ("json", "text"):
        return "json" if given == "json" else "text"
    if given:
        raise ValueError(f"{FORMAT_VARIABLE} must be json or text, not {given!r}")
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def config(log_format: Format | None = None, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for Herald and uvicorn: every record to stderr through Redact, in one format.

    `herald serve` passes it to uvicorn as `log_config`, so each HTTP process (and uvicorn's own error log) uses it.
    """
    chosen = log_format or chosen_format()
    formatter = JsonFormatter if chosen == "json" else TextFormatter
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "herald",
        "filters": ["redact"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": f"{__name__}.Redact"}},
        "formatters": {"herald": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's loggers carry their own handlers in its default config; here they go to the root's.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            # Herald writes its own access log (route template, business, duration): see herald.api.ops.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            "alembic": {"level": "WARNING"},
            # httpx logs every request at INFO; the provider adapters report what matters themselves.
            "httpx": {"level": "WARNING"},
        },
    }


def setup(log_format: Format | None = None, level: str = "INFO") -> dict[str, Any]:
    """Configure this process's logging (see `config`) and return the configuration."""
    configuration = config(log_format, level)
    logging.config.dictConfig(configuration)
    return configuration


def protect(names: set[str]) -> None:
    """Add variable names whose values are secrets to HERALD_LOG_PROTECT, so this process and the processes it starts
    (uvicorn's) mask them; call before `setup`."""
    current = {name for name in os.environ.get(PROTECT_VARIABLE, "").split(",") if name}
    if names - current:
        os.environ[PROTECT_VARIABLE] = ",".join(sorted(current | names))


def for_process(store: Store) -> dict[str, Any]:
    """Set up logging for a `herald serve` or `herald worker` process: the `env:` credentials that campaigns and
    integrations name are protected (see `protect`), then `setup`. Returns the configuration (uvicorn's log_config)."""
    from herald.doctor import env_references

    with store.read() as tx:
        protect(set(env_references(tx)))
    return setup()
