"""The ingest progress bar: files done, hours of footage done and time left, on stderr."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class IngestProgress:
    """A rich progress bar, silent when disabled or when stderr is not a terminal."""

    def __init__(self, total_files: int, *, enabled: bool) -> None:
        self.total = total_files
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
        self._task = self._progress.add_task("ingest", total=self.total, hours=0.0)
        return self

    def advance(self, footage_seconds: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, hours=footage_seconds / 3600)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
