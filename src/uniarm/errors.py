"""The one exception type a user sees: it names the problem and the fix."""


class UniarmError(Exception):
    """Bad input or a broken environment, explained for a person.

    The CLI prints the message without a traceback and exits with status 2.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")
