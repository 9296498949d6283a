"""One exception type for problems the user can fix; CLIs print it as one line."""
import functools
import sys


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""

    exit_code = 2


def cli_errors(func):
    """Wrap a CLI entry point so a UserError (or Ctrl-C) ends with one line, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(e.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130)

    return wrapper
