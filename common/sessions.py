"""onnxruntime sessions as every room opens them: quiet (warnings off the terminal), a thread count when
asked, and the execution providers by one rule."""
from __future__ import annotations

from .errors import UserError, say


def session_options(threads: int | None = None, optimize: bool = True):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    if not optimize:  # e.g. to keep QuantizeLinear outputs as real tensors
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return opts


def choose_providers(provider: str = "auto", log=say) -> list:
    """--provider auto|cpu|cuda -> onnxruntime providers (auto = CUDA where this onnxruntime has it)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if provider in ("cuda", "auto"):
        if "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if provider == "cuda":
            log("CUDA was asked for but this onnxruntime has no CUDAExecutionProvider "
                "(install onnxruntime-gpu); falling back to CPU")
        return ["CPUExecutionProvider"]
    raise UserError(f"unknown provider {provider!r}: use auto, cpu or cuda")


def ort_session(model, threads: int | None = None, providers=("CPUExecutionProvider",), opts=None,
                optimize: bool = True):
    """model: a path or the serialized bytes of an ONNX graph."""
    import onnxruntime as ort

    opts = opts or session_options(threads, optimize)
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=opts,
                                providers=list(providers))
