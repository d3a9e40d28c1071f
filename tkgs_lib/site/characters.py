"""Which characters a site value may hold: what vCenter, the appliance or a person's screen would mangle.

Every text value of a site is read by people (plans, reports) and sent to vCenter or the appliance,
so none may hold what a screen does not show or shows as something else: control characters
(NUL, line breaks, tabs, escapes), bidirectional controls (a right-to-left override makes
``tkgs-workload`` read as another name), zero-width and other invisible format characters, or a
space that is not a space. Inventory names vCenter looks up by path may not hold what vCenter
escapes in its names (``/`` as ``%2f``, ``\\`` as ``%5c``, ``%`` as ``%25``): such a name is stored
as another and the lookup by the written name then points elsewhere, or nowhere.
"""

from __future__ import annotations

import unicodedata
from typing import Optional

__all__ = ["invisible_character", "escaped_in_inventory", "shown"]

# Unicode's control (Cc), format (Cf: bidirectional controls, zero-width and joiners, the BOM, the soft
# hyphen...), surrogate, private-use and unassigned characters, and line and paragraph separators.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_ESCAPED_BY_VCENTER = {"/": "%2f", "\\": "%5c", "%": "%25"}


def _named(char: str) -> str:
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    if not name:
        name = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "CHARACTER TABULATION", "\0": "NULL"}.get(
            char, "a control character")
    return f"{code} {name}"


def shown(text: str, limit: int = 60) -> str:
    """``text`` as a finding may show it: escaped (every hidden character visible) and cut when long."""
    escaped = text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return "'" + (escaped if len(escaped) <= limit else escaped[:limit] + "...") + "'"


def invisible_character(text: str) -> Optional[str]:
    """What is wrong with the first character of ``text`` a screen would hide or misshow, or None:
    e.g. "holds U+202E RIGHT-TO-LEFT OVERRIDE at character 5 (written 'tkgs\\u202e-x')"."""
    for position, char in enumerate(text, 1):
        category = unicodedata.category(char)
        if category in _HIDDEN_CATEGORIES or (category == "Zs" and char != " "):
            kind = "a space that is not a space" if category == "Zs" else "an invisible or control character"
            return f"holds {_named(char)} ({kind}) at character {position} (written {shown(text)})"
    return None


def escaped_in_inventory(text: str) -> Optional[str]:
    """Why an inventory name vCenter looks up by path cannot hold ``text``'s character, or None."""
    for position, char in enumerate(text, 1):
        if char in _ESCAPED_BY_VCENTER:
            return (f"holds {char!r} at character {position}: vCenter keeps it as {_ESCAPED_BY_VCENTER[char]} in an "
                    f"inventory name, so the object would not be found by the name written here")
    if text in (".", ".."):
        return f"is {text!r}, which names a folder of the path, not an object"
    return None
