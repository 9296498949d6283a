"""One exception type for problems the user can fix; CLIs print it as one line. And the one
escape for untrusted text (file names, names read from model files) before it reaches a terminal."""
import functools
import logging
import re
import signal
import sys
import threading
import unicodedata

import click

from .native_stderr import restore_native_stderr


# control, format (bidi overrides, zero-width), and lone surrogates (a file name that is not UTF-8)
UNPRINTABLE = ("Cc", "Cf", "Cs")


def has_control(text: str) -> bool:
    """Any control or format character (C0, DEL, C1, bidi overrides): what can move a terminal's
    cursor, clear it, retitle it, or fake a line."""
    return any(unicodedata.category(ch) in UNPRINTABLE for ch in str(text))


def printable(text) -> str:
    """`text` with every control or format character shown as an escape (\\x1b, \\n, \\u202e):
    safe to print, one line, and still telling the user which file or name it was."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in UNPRINTABLE:
            out.append(ch.encode("unicode_escape").decode("ascii") if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def say(*parts, file=None, sep=" ") -> None:
    """print() for one line that may hold untrusted text (file names, class names): escaped (a
    newline inside it too, so it cannot fake a line of its own), flushed."""
    print(printable(sep.join(str(p) for p in parts)), file=file or sys.stdout, flush=True)



class _Lines(logging.StreamHandler):
    """Plain lines, escaped as say() escapes them, on whatever sys.stdout or sys.stderr is when one is written
    (a test's capture, a redirected stream), not the object it was when the handler was made."""

    def __init__(self, where: str):
        super().__init__()
        self.where = where

    @property
    def stream(self):
        return getattr(sys, self.where)

    @stream.setter
    def stream(self, _value):  # StreamHandler.__init__ sets one: the name above decides
        pass

    def format(self, record) -> str:
        return printable(super().format(record))


def show_logs(where: str = "stderr", level: int = logging.INFO) -> None:
    """What a command reports as it works (the asl_edge.* loggers): plain lines on sys.stderr, or sys.stdout
    (`where`). Every command's entry point (cli_errors) sets it up; a library user configures logging instead."""
    root = logging.getLogger("asl_edge")
    mine = [h for h in root.handlers if isinstance(h, _Lines)]
    if mine:
        mine[0].where = where
    else:
        root.addHandler(_Lines(where))
    root.setLevel(level)
    root.propagate = False  # a library's own logging setup (root handlers) does not print them twice


# onnxruntime's messages wrap the reason in a status prefix, a C++ source location with a function signature
# and the failed check's expression; the reason is what the user can act on.
_NATIVE_NOISE = (
    (re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : "), ""),
    (re.compile(r"Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: "),
     r"\1 node '\2': "),
    (re.compile(r"\S+\.(?:h|hpp|cc|cpp|cu|c):\d+ [^(]*\((?:[^()]|\([^()]*\))*\)\s*"), ""),
    (re.compile(r"(?<=: )[^.:]* was false\.\s*"), ""),
)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's first line (a library's message can run to pages) without a native library's
    source locations, or its type when it says nothing."""
    text = str(exc).strip()
    for pattern, repl in _NATIVE_NOISE:
        text = pattern.sub(repl, text)
    text = text.replace(" node '': ", " node: ").strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__

class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""

    exit_code = 2


def _last_line(text: str) -> None:
    restore_native_stderr()
    print(text, file=sys.stderr, flush=True)


def _sigterm_as_interrupt() -> None:
    """SIGTERM (kill, a service manager, a closing terminal) ends a command like Ctrl-C: its clean-up
    runs (temp files removed, workers stopped, the summary printed)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        try:
            signal.signal(signal.SIGTERM, interrupt)
        except (ValueError, OSError):
            pass


def cli_errors(func):
    """Wrap a CLI entry point so a UserError (or Ctrl-C) ends with one line, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        _sigterm_as_interrupt()
        show_logs()
        try:
            return func(*args, **kwargs)
        except UserError as e:
            _last_line(f"error: {printable(e)}")
            raise SystemExit(e.exit_code)
        except KeyboardInterrupt:
            _last_line("interrupted")
            raise SystemExit(130)

    return wrapper


class OneLineCommand(click.Command):
    """A click command whose usage mistakes (an unknown option, a value out of range) end like every
    other error: one `error:` line, exit 2, instead of click's usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            path = e.ctx.command_path if e.ctx is not None else (prog_name or _program_name(self.name))
            _last_line(f"error: {printable(e.format_message())} (see {path} --help)")
            raise SystemExit(e.exit_code) from None
        except click.ClickException as e:
            _last_line(f"error: {printable(e.format_message())}")
            raise SystemExit(e.exit_code) from None
        except click.Abort:  # Ctrl-C inside a click prompt
            _last_line("interrupted")
            raise SystemExit(130) from None
        raise SystemExit(code if isinstance(code, int) else 0)


def _program_name(fallback: str) -> str:
    import os

    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.endswith(".py") else fallback


def command(**settings):
    """click.command for every asl-edge CLI: -h as well as --help, usage mistakes in one line."""
    return click.command(cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]}, **settings)
