"""Rich consoles for Herald's command line that never read user text as markup.

Campaign names, contact cells, file names and column headers can look like Rich markup (`Promo [/]`,
`Cobranza [enero]`) or emoji codes (`:x:`); printed through a default Console they crash (`MarkupError`) or
lose text. These consoles turn markup and emoji off for every string, including Table cells; styling is done
with `rich.text.Text` spans instead, which never parse their content.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def plain_console(*, stderr: bool = False) -> Console:
    """A Console that prints strings as they are: no markup, emoji codes or highlighting.

    On stderr long lines are not wrapped, so each message stays one line for logs and scripts; standard output
    wraps as Rich always did.
    """
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=stderr)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and (text, style) pairs; nothing in the text is parsed as markup."""
    return Text.assemble(*parts)
