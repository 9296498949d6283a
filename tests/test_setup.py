"""The README's commands set up a project venv: they must work on PEP 668 ("externally managed")
system Pythons such as Debian 12's, Ubuntu 24.04's and Raspberry Pi OS's."""
from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

SYSTEM_PY = Path("/usr/bin/python3")


def _make(*args, env=None):
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "VIRTUAL_ENV"}
    return subprocess.run(["make", "-s", "-C", str(REPO), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_venv_from_an_externally_managed_system_python(tmp_path):
    if not SYSTEM_PY.exists() or not glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED"):
        pytest.skip("no externally managed /usr/bin/python3 on this machine")
    venv = tmp_path / "venv"
    proc = _make("venv", f"PY={SYSTEM_PY}", f"VENV={venv}")
    assert proc.returncode == 0, proc.stderr
    py = venv / "bin" / "python"
    # pip works inside the venv, which is where `make setup` installs
    out = subprocess.run([py, "-m", "pip", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and str(venv) in out.stdout, out.stdout + out.stderr
    # it sees the system's site-packages (python3-picamera2 from apt, on a Pi)
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg


def test_missing_venv_module_is_one_line_naming_the_package(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")  # a Python whose venv/ensurepip is missing (Debian without python3-venv)
    fake.chmod(0o755)
    proc = _make("venv", f"PY={fake}", f"VENV={tmp_path / 'venv'}")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "apt install python3-venv" in errors[0], proc.stderr
    assert not (tmp_path / "venv").exists()


def test_an_active_venv_is_used_as_it_is(tmp_path):
    # `make -n` prints the commands it would run
    env = {**os.environ, "VIRTUAL_ENV": str(tmp_path / "active")}
    out = subprocess.run(["make", "-n", "-C", str(REPO), "test"], capture_output=True, text=True, env=env)
    assert f"{tmp_path / 'active'}/bin/python -m pytest" in out.stdout
    assert ".venv" not in out.stdout
