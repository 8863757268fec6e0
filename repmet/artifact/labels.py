"""The one rule for a class label, in Python and C++ alike (``label_problem`` in
``cpp/src/gallery.cpp``): 1 to ``MAX_LABEL_CHARS`` characters (code points), not only whitespace,
and no control characters or line/paragraph separators, which would forge lines in a printed table
and make a gallery that saves but does not reload. Everything else (any language, emoji, spaces,
slashes) is a label."""

from __future__ import annotations

from repmet.limits import MAX_LABEL_CHARS

LINE_BREAKERS = {"\u2028", "\u2029"}
# Unicode's space separators (category Zs): a label of only these shows as nothing
SPACES = {" ", "\u00a0", "\u1680", *(chr(c) for c in range(0x2000, 0x200B)), "\u202f", "\u205f", "\u3000"}


def _forbidden(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or ch in LINE_BREAKERS


def label_problem(label) -> str | None:
    """What makes ``label`` not a label, as a phrase, or None."""
    if not isinstance(label, str):
        return f"a label must be a string, got {type(label).__name__}"
    if not label:
        return "a label must be a non-empty string, got ''"
    if len(label) > MAX_LABEL_CHARS:
        return f"a label may have at most {MAX_LABEL_CHARS} characters, got {len(label)} ({label[:40]!r}...)"
    bad = next((ch for ch in label if _forbidden(ch)), None)
    if bad is not None:
        return f"label {label[:60]!r} holds the control character U+{ord(bad):04X}; labels are one line of " \
               f"visible text"
    if all(ch in SPACES for ch in label):
        return f"a label must hold a visible character, got {label!r}"
    return None
