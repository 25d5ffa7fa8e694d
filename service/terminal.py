"""Text from outside (a subscriber's answer, Wiro's error, a task's metadata or prompt, anything the
relay hands back) made inert before it reaches a terminal.

A terminal acts on what it is sent: ESC and C1 sequences set the window title, clear the screen,
move the cursor or write the clipboard (OSC 52); bidirectional overrides reorder what is shown, so a
line can read differently from what it holds. Every such character is written as a visible escape
instead (``\\x1b``, ``\\x9b``, ``\\u202e``), as are lone surrogates, which no terminal encoding can
carry. Newlines and tabs are kept only where the caller's layout wants them.
"""

from __future__ import annotations

import json
from typing import Any

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_LINE_BREAKS = (0x2028, 0x2029)
UNSAFE = frozenset((*range(0x20), 0x7F, *range(0x80, 0xA0), *_BIDI, *_LINE_BREAKS, *range(0xD800, 0xE000)))
"""C0 and C1 controls, DEL, bidirectional controls, Unicode line and paragraph separators, surrogates."""


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_INERT = {code: _visible(code) for code in UNSAFE}
_INERT_KEEPING_LAYOUT = {code: text for code, text in _INERT.items() if chr(code) not in "\n\t"}
# JSON already escapes C0 controls; the rest become \u escapes, which JSON readers decode unchanged.
_JSON = {code: f"\\u{code:04x}" for code in UNSAFE if code >= 0x20}


def inert(text: str, *, keep_layout: bool = False) -> str:
    """``text`` with every control character as a visible escape; with ``keep_layout``, newlines
    and tabs stay as they are."""
    return text.translate(_INERT_KEEPING_LAYOUT if keep_layout else _INERT)


def inert_json(value: Any, **dumps: Any) -> str:
    """``value`` as JSON (keyword arguments as ``json.dumps`` takes them), non-ASCII text kept as it
    is but with no character a terminal acts on: those are ``\\u`` escapes, so the JSON reads back
    the same."""
    return json.dumps(value, ensure_ascii=False, **dumps).translate(_JSON)
