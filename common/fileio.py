"""Torch-free file helpers: atomic writes (no half-written outputs), output folders, leftovers
of killed runs, and hashes. Every write failure becomes one UserError line."""
import errno
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import UserError

# Temp names: atomic_write's ".<name>.<random>.tmp" and the work folders of asl-export / asl-bench.
# They live beside the output (same file system: the final rename is atomic) and are swept by the
# next run that writes there, so a SIGKILL leaves nothing behind for good.
TEMP_DIR_PREFIXES = (".asl-export-", ".asl-bench-")


def write_error(path, e: BaseException) -> UserError:
    """An OSError (or torch's RuntimeError around one) -> one line naming the cause and a fix."""
    code = getattr(e, "errno", None)
    text = str(e)
    if code == errno.ENOSPC or "No space left" in text:
        why, fix = "the disk is full", "free space or choose another output folder"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        why, fix = "no permission to write there (read-only or not yours)", "choose another output folder"
    elif code == errno.EISDIR:
        why, fix = "it is an existing folder", "give a file name"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        why, fix = "a file stands where a folder is needed", "choose another output path"
    elif "failed writing" in text or _nearly_full(path):  # only after the errno says nothing clearer (/proc has 0 free)
        why, fix = "the disk is full", "free space or choose another output folder"
    else:
        why, fix = (getattr(e, "strerror", None) or text.strip().splitlines()[0][:120] if text.strip()
                    else type(e).__name__), "check the output path"
    return UserError(f"cannot write {path}: {why}; {fix}")


def _nearly_full(path) -> bool:
    """torch's writer reports a full disk as 'unexpected pos ...': ask the file system instead."""
    probe = Path(path)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free < (4 << 20)
    except OSError:
        return False


def ensure_dir(path, what="output folder") -> Path:
    """mkdir -p, or one line when a file is in the way or the place is not writable."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {what} {path}: no permission (read-only?); choose another")
    return path


def check_can_create(path, what="output folder") -> Path:
    """Fail early, without creating anything, when `path` could not become a writable folder."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot write {what} {path}: {probe} is a file, not a folder; choose another")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {what} {path}: no permission (read-only?); choose another")
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write_fn) -> Path:
    """write_fn(tmp_path) writes the file; it then replaces `path` in one rename. On any failure
    the temp file is removed and `path` keeps its old content."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is an existing folder; give a file name")
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename: the user's umask decides
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as RuntimeError
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


COMPLETE = ".complete"


def build_dir_once(dest: Path, fill) -> str:
    """A cache folder made once: `fill(tmp)` writes into a sibling temp folder and returns a short
    note, kept in dest/.complete; the folder is then renamed into place. A failure or Ctrl-C leaves
    neither dest nor the temp folder; a finished dest is reused as it is. -> the note."""
    done = dest / COMPLETE
    if done.is_file():
        return done.read_text()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed build
    try:
        tmp.mkdir(parents=True)
        note = str(fill(tmp) or "")
        (tmp / COMPLETE).write_text(note)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_error(tmp, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return note


def temp_dir(folder, prefix) -> Path:
    """A work folder inside `folder` named <prefix><pid>-<random>: swept once that process is gone."""
    try:
        return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=ensure_dir(folder)))
    except OSError as e:
        raise write_error(folder, e) from None


_PID = re.compile(r"^\.(?:asl-(?:export|bench)-|.+\.)(?P<pid>\d+)-[A-Za-z0-9_]+(?:\.tmp)?$")


def _owner_gone(name: str) -> bool:
    """Temp names carry their writer's pid; a live writer's files are never swept."""
    m = _PID.match(name)
    if m is None:
        return True  # left by an older asl-edge: no pid to ask
    pid = int(m.group("pid"))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but someone else's
        return False
    return False


def sweep_temps(folder, names=None) -> int:
    """Remove what killed runs left in `folder`: atomic_write temps (of `names` only, when given)
    and asl-export / asl-bench work folders, whose process is gone. -> how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for p in folder.iterdir():
        n = p.name
        if p.is_file() and n.startswith(".") and n.endswith(".tmp") and _owner_gone(n) and \
                (names is None or any(n.startswith(f".{x}.") for x in names)):
            p.unlink(missing_ok=True)
            removed += 1
        elif p.is_dir() and n.startswith(TEMP_DIR_PREFIXES) and _owner_gone(n):
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
    return removed


def replace_set(pairs, backup_dir) -> None:
    """Move several finished files into place as one set: [(tmp, final), ...]. Existing finals
    are first moved into backup_dir (same file system); if any move fails, every final is put
    back as it was, so readers never see half of an old set and half of a new one."""
    backup_dir = Path(backup_dir)
    done = []  # (final, backup or None)
    try:
        for i, (tmp, final) in enumerate(pairs):
            final = Path(final)
            if final.is_dir():
                raise UserError(f"cannot write {final}: it is an existing folder; give a file name")
            backup = None
            if final.exists():
                backup = backup_dir / f"old{i}"
                os.replace(final, backup)
            done.append((final, backup))
            os.replace(tmp, final)
    except (OSError, UserError) as e:
        failed = final
        for restored, backup in reversed(done):
            try:
                if backup is not None:
                    os.replace(backup, restored)
                else:
                    restored.unlink(missing_ok=True)
            except OSError:
                pass
        raise (e if isinstance(e, UserError) else write_error(failed, e)) from None


def file_sha256(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def finite_json(obj):
    """obj with every float that is not finite (NaN, inf; numpy's too) replaced by None, and numpy
    numbers and arrays as plain ones, so json.dumps writes valid JSON (no bare NaN)."""
    import math

    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalar or array
        return finite_json(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_text(obj, **kw) -> str:
    """json.dumps of finite_json(obj): what every report and --json line of asl-edge writes."""
    import json

    return json.dumps(finite_json(obj), allow_nan=False, **kw)
