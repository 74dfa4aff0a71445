"""What a corpus loader read, dropped and skipped, and the checks that keep one bad file from aborting a load."""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


class CorpusError(ValueError):
    """A corpus folder is missing, empty or not in the expected layout."""


@dataclass
class LoadReport:
    """What a loader read, what it dropped and what it skipped, with reasons."""

    corpus: str
    root: Path
    loaded: int = 0
    dropped_classes: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: Path | str, reason: str) -> None:
        """Record one skipped file."""
        self.skipped.append((str(path), reason))

    def __str__(self) -> str:
        lines = [f"{self.corpus} at {self.root}: {self.loaded} clips in the 6 classes"]
        if self.dropped_classes:
            dropped = ", ".join(f"{name} {count}" for name, count in sorted(self.dropped_classes.items()))
            lines.append(f"  dropped (outside the 6 classes): {dropped}")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} file(s):")
            lines.extend(f"    {path}: {reason}" for path, reason in self.skipped[:20])
            if len(self.skipped) > 20:
                lines.append(f"    ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


def require_dir(root: Path | str, corpus: str) -> Path:
    """``root`` as a path, or :class:`CorpusError` when it is missing or not a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise CorpusError(f"{corpus} folder not found: {root}")
    if not root.is_dir():
        raise CorpusError(f"{corpus} path is not a folder: {root}")
    return root


def usable_file(path: Path, report: LoadReport) -> bool:
    """A clip file is usable when it is a readable, non-empty regular file; anything else is reported with the
    reason (a broken link, a folder or a pipe named like a clip, an unreadable or empty file), never raised."""
    reason = unusable_reason(path)
    if reason:
        report.skip(path, reason)
    return not reason


def unusable_reason(path: Path) -> str:
    """Why ``path`` cannot be read as a clip ('' when it can)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "broken link (its target does not exist)" if path.is_symlink() else "file vanished while loading"
    except OSError as error:
        return f"cannot read the file's metadata ({error.strerror or error})"
    if stat.S_ISDIR(info.st_mode):
        return "a folder named like a clip, not a file"
    if not stat.S_ISREG(info.st_mode):
        return (
            "a named pipe (FIFO), not a file" if stat.S_ISFIFO(info.st_mode) else "a special file, not a regular file"
        )
    if info.st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return ""
