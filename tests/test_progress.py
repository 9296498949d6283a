"""Long work shows progress: a tqdm bar on a terminal, a logged line every so often elsewhere."""
from tqdm import tqdm

from asl_edge.train import progress as P


def test_without_a_terminal_progress_is_logged_lines_with_count_rate_and_time_left(monkeypatch, logged):
    monkeypatch.setattr(P.sys.stderr, "isatty", lambda: False, raising=False)
    bar = P.progress(range(4), desc="hand finder", unit="img")
    assert isinstance(bar, P.LoggedProgress)
    bar.every_s = 0.0
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss="0.5")
    assert seen == [0, 1, 2, 3]
    assert [line.split(" (")[0] for line in logged] == [f"hand finder: {n}/4 img" for n in range(1, 5)]
    assert "left" in logged[0] and "img/s" in logged[0] and "loss=0.5" in logged[-1]


def test_lines_come_at_most_every_interval_and_count_updates_without_a_total(logged):
    bar = P.LoggedProgress(total=None, desc="features", unit="batch", every_s=3600)
    for _ in range(100):
        bar.update()
    assert bar.n == 100 and logged == []  # within the interval: silent
    assert bar.line(bar.start + 10) == "features: 100 batch (10.0 batch/s)"


def test_on_a_terminal_it_is_tqdm(monkeypatch):
    monkeypatch.setattr(P.sys.stderr, "isatty", lambda: True, raising=False)
    bar = P.progress(total=3, desc="x", unit="img")
    assert isinstance(bar, tqdm)
    bar.close()
