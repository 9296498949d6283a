"""Helpers for the fault-catalogue tests: a catalogue of cases, run a CLI in this process, hostile
files, contracts and tiny checkpoints."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path


def catalogue():
    """A fresh catalogue for one test file: (cases by name, the `@case` decorator that adds one);
    the file's test_fault runs each case as its own test."""
    cases = {}

    def case(fn):
        cases[fn.__name__] = fn
        return fn

    return cases, case


@dataclass
class Result:
    code: int
    out: str
    err: str


def call(capfd, main, *args, prog="asl") -> Result:
    """Run a click entry point in-process (much faster than a fresh interpreter); capfd sees
    native stderr too, so decoder noise that escapes shows up."""
    import os

    args = [str(a) for a in args]
    saved_env = dict(os.environ)  # options like --max-megapixels export themselves for workers
    try:
        if hasattr(main, "main"):  # a click command
            main.main(args=args, prog_name=prog)
        else:
            main(args)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
    out, err = capfd.readouterr()
    return Result(code, out, err)


def one_error(res: Result, *fragments, code=2) -> str:
    """Exit `code`, no traceback, exactly one 'error:' line holding each fragment."""
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err + res.out, res.err
    lines = [l for l in res.err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, res.err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def png_header_only(path, width, height) -> Path:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: a few hundred bytes that
    would decode to gigabytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(body)
    return Path(path)


def contract_json(**kw) -> str:
    """The JSON of a contract for the six colour-model classes at 64 px, with fields of kw replaced."""
    from asl_edge.runtime.contract import ModelContract

    return ModelContract(**{"classes": ("A", "B", "C", "del", "nothing", "space"), "input_size": 64, **kw}).to_json()


def set_contract(src, dst, text: str) -> Path:
    """Copy an ONNX file with its contract metadata replaced by `text` (JSON)."""
    import onnx

    from asl_edge.runtime.contract import CONTRACT_KEY

    m = onnx.load(str(src))
    for p in m.metadata_props:
        if p.key == CONTRACT_KEY:
            p.value = text
    onnx.save(m, str(dst))
    return Path(dst)


def tiny_checkpoint(path, data=(), **overrides) -> Path:
    """A real asl-edge checkpoint of an untrained 32 px EfficientNet-Lite0 (about a second)."""
    from asl_edge.runtime.contract import LITE_MEAN, LITE_STD, ModelContract
    from asl_edge.train.checkpoint import save_checkpoint
    from asl_edge.train.models import build_model

    contract = ModelContract(classes=("A", "B", "C"), input_size=32, mean=LITE_MEAN, std=LITE_STD)
    model = build_model("efficientnet_lite0", 3, weights="none", input_size=32)
    import torch

    optimizer = torch.optim.Adam([{"params": list(model.head.parameters()), "lr": 1e-3}])  # as asl-train's
    state = {"epoch": 1, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
             "train_loss": 1.0, "arch": "efficientnet_lite0", "contract": contract.to_dict(),
             "config": {"data": [str(d) for d in data], "arch": "efficientnet_lite0", "epochs": 3, "img_size": 32,
                        "weights": "none"},
             "split": {}, "history": [], "best_val_acc": 0.5, "best_epoch": 1}
    state.update(overrides)
    save_checkpoint(state, path)
    return Path(path)
