"""The ingest progress bar: files done, hours of footage done and time left, on stderr."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class IngestProgress:
    """A rich progress bar, silent when disabled or when stderr is not a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> IngestProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return self
        self._progress = Progress(
            TextColumn("ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files  {task.fields[hours]:.2f} h footage"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._progress.start()
        self._task = self._progress.add_task("ingest", total=None, hours=0.0)
        return self

    def __call__(self, total_files: int, summary: Any) -> None:
        """ingest's progress callback: one more file stored, of `total_files` found."""
        if self._progress is not None:
            hours = summary.footage_seconds / 3600
            self._progress.update(self._task, total=total_files, advance=1, hours=hours)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
