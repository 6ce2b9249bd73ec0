"""loopml.views.text against Unicode's own character table (unicodedata) and rich's renderer."""

from __future__ import annotations

import io
import unicodedata

import pytest

from loopml.views.text import clean, line, plain

CONTROLS = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]
BIDI = ["\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
        "\u2066", "\u2067", "\u2068", "\u2069"]


def render(renderable) -> str:
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=300, color_system=None, force_terminal=False).print(renderable)
    return out.getvalue()


def test_every_control_character_is_escaped():
    assert len(CONTROLS) == 65  # C0, DEL and C1, as Unicode defines them
    for char in [*CONTROLS, *BIDI, "\u2028", "\u2029"]:
        shown = clean(f"a{char}b")
        assert char not in shown and shown.startswith("a\\") and shown.endswith("b")
        assert shown.isascii() and shown.isprintable()


def test_escapes_read_like_python_escapes():
    assert clean("\x1b[2J\x07\r\n\t\x9b") == "\\x1b[2J\\x07\\r\\n\\t\\x9b"
    assert clean("x\u202egnp.exe") == "x\\u202egnp.exe"
    assert clean("line\nbreak", newlines=True) == "line\nbreak"


@pytest.mark.parametrize("text", ["bert[base]", "lr[/]0.1", "[bold red]x[/]", ":smile:",
                                  "naïve 東京 😀 e\u0301 a\u00a0b", "back\\slash[", "]["])
def test_printable_text_is_unchanged_and_rendered_literally(text):
    assert clean(text) == text
    assert render(plain(text, "bold")).rstrip("\n") == text
    assert render(line(("name", "bold"), " ", text)).rstrip("\n") == f"name {text}"


def test_nothing_a_terminal_acts_on_survives_rendering():
    everything = "".join(chr(c) for c in range(0x3000))
    rendered = render(plain(everything))
    left = {ch for ch in rendered if unicodedata.category(ch) == "Cc"} - {"\n"}
    assert not left
    assert not set(BIDI) & set(rendered)
