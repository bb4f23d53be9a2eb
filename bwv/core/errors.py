"""Small domain errors raised by the library; only the CLI turns them into `Error: ...` lines."""


class BwvError(Exception):
    """Something the user can fix: a bad path, option, file or database."""

    exit_code = 2


class NotFound(BwvError):
    """A clip, incident or file named by the user does not exist."""


class CatalogueError(BwvError):
    """The catalogue database cannot be opened, read or written."""


class CatalogueBusy(CatalogueError):
    """The database could not do it now but may in a moment: the connection was lost,
    the server restarted, or a concurrent writer won (serialization failure, deadlock).
    The queue retries these with backoff; nothing of the transaction was kept."""


class ImportRejected(BwvError):
    """An import file has bad rows; nothing from it was written."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        super().__init__("\n".join(problems))


class AccessDenied(BwvError):
    """The signed-in user's role may not do this, or the thing is not yet released to it."""


class LoginRefused(BwvError):
    """Wrong name or password, a disabled user, or one locked after failed attempts."""
