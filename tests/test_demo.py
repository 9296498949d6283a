"""`make demo` without data: the shipped model spells the shipped clip of a real hand."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_without_data_spells_the_shipped_clip(tmp_path):
    env = {**os.environ, "ASL_DATA": "", "DEMO_OUT": str(tmp_path / "out"), "PY": sys.executable,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    assert shutil.which("asl-run", path=env["PATH"])
    r = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "No training images found" in r.stdout and "trained on this person's recordings" in r.stdout
    summary = r.stdout.strip().splitlines()[-1]
    assert summary.startswith("summary:") and "hand found in 261/261 frames" in summary
    typed = summary.split("text: ")[-1].strip("'")
    assert len(typed) >= 2 and set(typed) <= set("HELO"), summary  # letters of the word, in a real run
