"""onnxruntime sessions as every room opens them: quiet (warnings off the terminal), a thread count when
asked (whose threads stop spinning after each run where models take turns), and the execution providers by
one rule."""
from __future__ import annotations

import logging
import queue
import threading

from .errors import UserError

log = logging.getLogger(__name__)


def session_options(threads: int | None = None, optimize: bool = True, take_turns: bool = False):
    """take_turns: the session takes turns with others on the same cores (the camera loop's models), so its
    threads stop spinning when its run ends instead of spinning on the cores the next model needs
    (benchmarks/RESULTS.md, "Two models taking turns on two threads")."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if take_turns:
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    if not optimize:  # e.g. to keep QuantizeLinear outputs as real tensors
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return opts


def choose_providers(provider: str = "auto") -> list:
    """--provider auto|cpu|cuda -> onnxruntime providers (auto = CUDA where this onnxruntime has it)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if provider in ("cuda", "auto"):
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if provider == "cuda":
            log.info("CUDA was asked for but this onnxruntime has no CUDAExecutionProvider "
                     "(install onnxruntime-gpu); falling back to CPU")
        return ["CPUExecutionProvider"]
    raise UserError(f"unknown provider {provider!r}: use auto, cpu or cuda")


def ort_session(model, threads: int | None = None, providers=("CPUExecutionProvider",), opts=None,
                optimize: bool = True, take_turns: bool = False):
    """model: a path or the serialized bytes of an ONNX graph."""
    import onnxruntime as ort

    opts = opts or session_options(threads, optimize, take_turns)
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=opts,
                                providers=list(providers))


class BoundedRuns:
    """onnxruntime runs on one daemon thread of their own, each waited for at most `limit` seconds: a graph
    that never ends (a Loop without an end) stops with one line instead of hanging, and Ctrl-C, which cannot
    reach a thread inside onnxruntime, stops the run (its terminate flag) before it is raised."""

    def __init__(self, name: str = "asl-inference"):
        self.name, self._jobs, self._thread = name, None, None

    def __call__(self, work, limit: float, too_long):
        """work(RunOptions) -> its result; too_long() -> the exception raised when `limit` s pass first."""
        import onnxruntime as ort  # here: common is imported by tools that never open a session

        if self._thread is None:
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._serve, daemon=True, name=self.name)
            self._thread.start()
        options = ort.RunOptions()
        options.log_severity_level = 4  # the terminate flag's own error is ours to report, in one line
        box, done = {}, threading.Event()
        self._jobs.put((work, options, box, done))
        try:  # an Event, not Thread.join: an interrupted join can report a running thread as stopped
            finished = done.wait(limit)
        except KeyboardInterrupt:
            options.terminate = True
            done.wait(10)  # onnxruntime stops at its next node; exiting before that would abort the process
            raise
        if not finished:
            options.terminate = True
            done.wait(10)
            raise too_long()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _serve(self):
        while True:
            work, options, box, done = self._jobs.get()
            try:
                box["value"] = work(options)
            except BaseException as e:  # handed to the caller's thread
                box["error"] = e
            finally:
                done.set()
