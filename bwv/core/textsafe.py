"""Text from outside made safe for a terminal line: the one rule for every text rendering.

Officer names, teams, file names, sidecar values and transcripts come from other systems
and from camera files. An escape sequence could retitle, clear or spoof an inspector's
terminal, a text-direction override could reorder what they read, and a newline could
forge a line of output. Every character that is not printable (C0 and C1 controls, DEL,
format characters such as the bidirectional overrides, undecodable bytes) is shown as its
Python escape instead. JSON and CSV outputs have their own escaping and do not use this.
"""

from __future__ import annotations


def printable(value: object) -> str:
    """`value` as text safe for one terminal line."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
