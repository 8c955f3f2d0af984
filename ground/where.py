"""Where a ground script's step was called from: its file:line, and the text of an argument.

The vocabulary's own frames (ground/, hil/, protocol/, and contextlib's, which its context
managers add) are skipped, so a step is placed on the script's line that called it, or on
the line of a module of the script's own that did.
"""

from __future__ import annotations

import contextlib
import functools
import linecache
import os
from pathlib import Path
from types import FrameType
from typing import Final

_OWN_DIRS: Final = tuple(os.path.realpath(Path(__file__).parent.parent / d) + "/"
                         for d in ("ground", "hil", "protocol"))


@functools.lru_cache(maxsize=256)
def is_own(filename: str) -> bool:
    """A file of the vocabulary itself (or contextlib), not of the script."""
    return os.path.realpath(filename).startswith(_OWN_DIRS) or filename == contextlib.__file__


def script_frame(start: FrameType | None) -> FrameType | None:
    """The innermost frame from ``start`` outwards that is not the vocabulary's own."""
    frame = start
    while frame is not None:
        if not is_own(frame.f_code.co_filename):
            return frame
        frame = frame.f_back
    return None


def location(frame: FrameType | None) -> str:
    """file:line of a frame ("?" for none)."""
    if frame is None:
        return "?"
    return f"{display_path(frame.f_code.co_filename)}:{frame.f_lineno}"


def display_path(filename: str) -> str:
    """A path relative to the working directory when it is under it, else as it is."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return filename


def first_argument(frame: FrameType, call: str) -> str:
    """The first argument of ``call(...)`` as written on the frame's line ("" if the call is
    not on that line), e.g. ``soc`` for ``check(soc, greater_than(20))``."""
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    start = line.find(call + "(")
    if start < 0:
        return ""
    text = line[start + len(call) + 1:]
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}" and depth > 0:
            depth -= 1
        elif ch in ",)]}" and depth == 0:
            return text[:i].strip()
    return ""
