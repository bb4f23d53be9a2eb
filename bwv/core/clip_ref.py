"""The one rule for naming a clip on the command line or in a URL.

`CLIP` is tried, in this order, as:
1. a clip id (all digits, below 2**63) that exists;
2. an exact file name;
3. a SHA-256, or a prefix of at least 8 hex digits.
The first form that matches anything decides; more than one clip matching it is an error
that lists them (give the id instead), and no match at all is `NotFound`. Every command
that takes a clip (show, transcript, link, unlink, verify, ...) resolves it here, so one
reference always means the same clip.
"""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from bwv.core.errors import BwvError, NotFound
from bwv.core.models import Clip

MIN_HASH_PREFIX = 8
_HEX = re.compile(r"[0-9a-fA-F]+")
_SHOWN = 5  # clips named in a "matches several" error


def find_clip(session: Session, reference: str) -> Clip:
    """The clip `reference` names, by the rule in the module docstring."""
    text = reference.strip()
    if _is_id(text) and (clip := session.get(Clip, int(text))) is not None:
        return clip
    matches = _by_name(session, text) or _by_hash(session, text)
    if not matches:
        raise NotFound(f"no clip {reference!r} in the catalogue (give an id, hash or file name)")
    if len(matches) > 1:
        ids = ", ".join(str(m.id) for m in matches[:_SHOWN])
        more = " ..." if len(matches) > _SHOWN else ""
        raise BwvError(f"{reference!r} matches several clips ({ids}{more}); give the clip id")
    return matches[0]


def _is_id(text: str) -> bool:
    # Digits beyond a 64-bit integer cannot be an id (the database would refuse them);
    # they may still be a file name or a hash prefix.
    return text.isascii() and text.isdigit() and int(text) < 2**63


def _by_name(session: Session, text: str) -> list[Clip]:
    query = select(Clip).where(col(Clip.file_name) == text).order_by(col(Clip.id))
    return list(session.exec(query.limit(_SHOWN + 1)))


def _by_hash(session: Session, text: str) -> list[Clip]:
    if len(text) < MIN_HASH_PREFIX or not _HEX.fullmatch(text):
        return []
    query = select(Clip).where(col(Clip.sha256).startswith(text.lower())).order_by(col(Clip.id))
    return list(session.exec(query.limit(_SHOWN + 1)))
