"""User-supplied text made safe for a terminal: control characters shown escaped, no markup.

Run names, params, tags, metric keys, artifact names, column names and file paths come from
users and from data files. Printed raw, ``"\\x1b[2J"`` clears the screen and ``"lr[/]0.1"``
breaks rich's markup parser. Views build every line from :func:`plain` pieces (rich ``Text``,
which is never parsed for markup or emoji codes), after :func:`clean` has escaped the
characters a terminal would act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# C0 and C1 control characters and DEL, the line/paragraph separators, and the bidirectional
# overrides that can make a name read differently from what is stored ("Trojan source").
_ESCAPED = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029,
            *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_TABLE = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _ESCAPED}
_TABLE.update({ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})
_TABLE_KEEP_NEWLINES = {code: text for code, text in _TABLE.items() if code != ord("\n")}


def clean(value: object, *, newlines: bool = False) -> str:
    r"""Return ``value`` as text with every terminal control character written as an escape.

    With ``newlines`` a line break stays a line break (for multi-line messages).

    >>> clean("bad\x1b[31mred\a\r")
    'bad\\x1b[31mred\\x07\\r'
    >>> clean("bert[base]")
    'bert[base]'
    """
    return str(value).translate(_TABLE_KEEP_NEWLINES if newlines else _TABLE)


def plain(value: object, style: str = "", *, newlines: bool = False) -> Text:
    """Return ``value`` as a rich Text shown literally: no markup, no emoji codes.

    >>> plain("lr[/]0.1", "bold").plain
    'lr[/]0.1'
    """
    from rich.text import Text

    return Text(clean(value, newlines=newlines), style=style)


def line(*parts: str | Text | tuple[str, str]) -> Text:
    """Return one line joined from pieces; a plain ``str`` piece is cleaned, never parsed.

    A ``(text, style)`` pair is cleaned and styled.

    >>> line(("run", "bold"), " ", "a[/]b").plain
    'run a[/]b'
    """
    from rich.text import Text

    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(clean(part[0]), style=part[1])
        else:
            out.append(clean(part))
    return out
