"""What an extraction run did (clips done, skipped, failed, corrupt entries, warnings) and how an interrupted run
ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emotion_lib.features.runners import ClipResult


@dataclass
class ExtractionReport:
    """What an extraction run did: clips done, skipped (already cached and verified), failed (with reasons),
    faceless; the warnings of done clips (truncated media, clipped samples, no audio track); cached entries that did
    not verify (``corrupt``: path and reason, extracted again), stale temporary files removed, and whether the run
    was interrupted."""

    cache_dir: Path
    config_key: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    removed_temporaries: list[str] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    video_frames: int = 0
    finished: bool = False
    interrupted: bool = False

    def add(self, result: ClipResult) -> None:
        """Record one worker result."""
        if result.status == "done":
            self.done.append(result.clip_id)
            self.audio_seconds += result.audio_seconds
            self.video_frames += result.video_frames
            if result.video_frames and not result.faces:
                self.no_face.append(result.clip_id)
            self.warnings.extend((result.clip_id, message) for message in result.warnings)
        else:
            self.failed.append((result.clip_id, result.reason))

    def to_dict(self) -> dict:
        return {
            "cache_dir": str(self.cache_dir),
            "config_key": self.config_key,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "done": len(self.done),
            "skipped": len(self.skipped),
            "failed": [list(item) for item in self.failed],
            "corrupt": [list(item) for item in self.corrupt],
            "removed_temporaries": self.removed_temporaries,
            "no_face": self.no_face,
            "warnings": [list(item) for item in self.warnings],
            "seconds": round(self.seconds, 3),
            "audio_seconds": round(self.audio_seconds, 3),
            "video_frames": self.video_frames,
        }

    def __str__(self) -> str:
        rate = len(self.done) / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"extraction into {self.cache_dir}{' (INTERRUPTED)' if self.interrupted else ''}: {len(self.done)} done, "
            f"{len(self.skipped)} skipped (cached), {len(self.failed)} failed in {self.seconds:.1f} s "
            f"({rate:.2f} clips/s)"
        ]
        if self.no_face:
            lines.append(
                f"  {len(self.no_face)} clip(s) without any detected face (video fully masked): "
                + ", ".join(self.no_face[:10])
                + (" ..." if len(self.no_face) > 10 else "")
            )
        lines.extend(f"  WARNING {clip_id}: {message}" for clip_id, message in self.warnings)
        if self.corrupt:
            lines.append(f"  {len(self.corrupt)} cached entr{'y' if len(self.corrupt) == 1 else 'ies'} did not verify:")
            lines.extend(f"    CORRUPT {path}: {reason} (extracted again)" for path, reason in self.corrupt)
        if self.removed_temporaries:
            lines.append(f"  removed {len(self.removed_temporaries)} stale temporary file(s) of killed runs")
        lines.extend(f"  FAILED {clip_id}: {reason}" for clip_id, reason in self.failed)
        return "\n".join(lines)


class ExtractionInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`extract_features`; ``report`` holds what the run did until then (also in the manifest).

    The clips stored are whole; a rerun resumes the run.
    """

    def __init__(self, report: ExtractionReport) -> None:
        super().__init__(
            f"extraction interrupted: {len(report.done)} clip(s) extracted in this run, {len(report.skipped)} were "
            f"cached; the rest is not extracted (rerun to resume)"
        )
        self.report = report
