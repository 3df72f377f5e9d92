"""Reading a campaign file (YAML or JSON) into a validated configuration, with errors that quote the file.

Every problem is one line that says where and shows the text at fault: a byte that is not UTF-8 (with its
offset and the bytes around it), a YAML/JSON syntax error (with its line, column and that line's text), a
document that is not a mapping, or the fields `parse_campaign` refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from herald.domain.campaign import AgentConfig, CampaignConfig, ConfigError, parse_agent, parse_campaign
from herald.providers import registry

_SHOWN = 60  # characters of an offending line quoted in a message


class CampaignFileError(ValueError):
    """A campaign file that cannot be used; the message is one line naming where and what."""


def read_campaign_file(path: Path) -> CampaignConfig:
    """Read, parse and validate a campaign file; raise CampaignFileError (one line) when it cannot be used."""
    return validate(read_campaign_document(path))


def read_campaign_document(path: Path) -> dict[str, Any]:
    """The mapping a campaign file holds, not yet validated (`campaign edit` merges it into a campaign first)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CampaignFileError(f"cannot read the file ({error.strerror or error})") from None
    return parse_document(data)


def read_agent_file(path: Path) -> AgentConfig:
    """An agent definition (what a campaign file has under `agent:`); CampaignFileError names every problem."""
    document = read_campaign_document(path)
    try:
        return parse_agent(document)
    except ConfigError as error:
        raise CampaignFileError(str(error).strip("'\"")) from None


def read_options_file(path: Path) -> dict[str, Any]:
    """A provider options mapping (what a campaign file has under `provider_options:`), not yet validated."""
    return read_campaign_document(path)


def validate(document: dict[str, Any]) -> CampaignConfig:
    """A campaign configuration from a mapping, its `provider_options` checked by its provider's own model (so a
    bad rate or a misspelt key is refused here, not by every later `herald run`); CampaignFileError names every
    problem."""
    try:
        config = parse_campaign(document)
        registry.check_channel(config.provider, config.channel.value)
        registry.validate_options(config.provider, config.provider_options)
    except (ConfigError, registry.UnknownProvider, registry.UnsupportedChannel, registry.ProviderOptionsError) as error:
        raise CampaignFileError(str(error).strip("'\"")) from None
    return config


def parse_campaign_text(data: bytes) -> CampaignConfig:
    """Parse and validate the bytes of a campaign file (YAML, of which JSON is a subset)."""
    return validate(parse_document(data))


def parse_document(data: bytes) -> dict[str, Any]:
    """The top-level mapping of a campaign file's bytes; CampaignFileError quotes what cannot be read."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a BOM from a Windows editor is not an error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        around = data[max(0, error.start - 20) : error.start + 20]
        raise CampaignFileError(
            f"not UTF-8 text: byte {error.start} ({data[error.start : error.start + 1]!r}) in {around!r}; "
            "save the file as UTF-8"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        raise CampaignFileError(_yaml_message(error, text)) from None
    except yaml.YAMLError as error:
        raise CampaignFileError(f"not YAML or JSON ({' '.join(str(error).split())})") from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}, not a mapping of fields"
        raise CampaignFileError(f"the campaign file is {kind} (expected name:, channel: … at the top level)")
    return {str(key): value for key, value in document.items()}


def _yaml_message(error: yaml.MarkedYAMLError, text: str) -> str:
    mark = error.problem_mark or error.context_mark
    problem = " ".join(filter(None, (error.context, error.problem))) or "syntax error"
    if mark is None:
        return f"not YAML or JSON: {problem}"
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    shown = line if len(line) <= _SHOWN else line[:_SHOWN] + "…"
    return f"not YAML or JSON: line {mark.line + 1}, column {mark.column + 1}: {problem}: {shown!r}"
