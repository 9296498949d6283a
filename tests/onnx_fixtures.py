"""Tiny asl-edge ONNX models, media files and hand landmarks for runtime tests (no training, a second or so).

torch is used here to build the models; the runtime under test never imports it.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import cv2
import numpy as np

from asl_edge.runtime.contract import CONTRACT_KEY, ModelContract

# Colour-model classes: a red box is "A", green "B", blue "C", a dark frame "nothing".
COLOR_CLASSES = ("A", "B", "C", "del", "nothing", "space")
RED, GREEN, BLUE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)  # RGB


def _random_net(num_classes):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def _color_net(classes):
    """Mean colour -> class, so camera/spelling tests know which letter each frame shows."""
    import torch
    import torch.nn as nn

    class ColorNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, len(classes))
            w = torch.zeros(len(classes), 3)
            b = torch.full((len(classes),), -5.0)
            for name, row in (("A", [3.0, -1.5, -1.5]), ("B", [-1.5, 3.0, -1.5]), ("C", [-1.5, -1.5, 3.0])):
                if name in classes:
                    w[classes.index(name)] = torch.tensor(row)
                    b[classes.index(name)] = -2.0
            if "nothing" in classes:
                b[classes.index("nothing")] = 0.0
            with torch.no_grad():
                self.fc.weight.copy_(w)
                self.fc.bias.copy_(b)

        def forward(self, x):
            return self.fc(x.mean(dim=(2, 3)))

    return ColorNet()


def _uint8_wrapper(net, contract):
    """uint8 NHWC in, normalised float NCHW to net: what an input_format="uint8" export does."""
    import torch
    import torch.nn as nn

    class Uint8Input(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(contract.mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(contract.std).view(1, 3, 1, 1))

        def forward(self, x):
            x = x.permute(0, 3, 1, 2).float() / 255.0
            return self.net((x - self.mean) / self.std)

    return Uint8Input()


def make_tiny_onnx(path, contract: ModelContract | None = None, kind: str = "random",
                   with_contract: bool = True) -> Path:
    """Write a tiny ONNX classifier at path, with the contract JSON in its metadata.

    kind: "random" (a random conv net) or "color" (red/green/blue -> A/B/C, dark -> nothing).
    with_contract=False leaves the metadata out: a valid ONNX file that is not an asl-edge model.
    """
    import onnx
    import torch

    path = Path(path)
    if contract is None:
        classes = COLOR_CLASSES if kind == "color" else ModelContract().classes
        contract = ModelContract(classes=classes, input_size=64)
    torch.manual_seed(0)
    net = _color_net(list(contract.classes)) if kind == "color" else _random_net(contract.num_classes)
    s = contract.input_size
    if contract.input_format == "uint8":
        net = _uint8_wrapper(net, contract)
        example = torch.zeros(1, s, s, 3, dtype=torch.uint8)
    else:
        example = torch.zeros(1, 3, s, s)
    net.eval()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and fine for this
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    if with_contract:
        model = onnx.load(str(path))
        entry = model.metadata_props.add()
        entry.key, entry.value = CONTRACT_KEY, contract.to_json()
        onnx.save(model, str(path))
    return path


def write_image(path, rgb=None, size=(80, 60), seed=0) -> Path:
    """An image file (random noise unless a colour is given); parents are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    if rgb is None:
        img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = rgb
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def write_video(path, colors, size=224, fps=10.0) -> Path:
    """An MJPG .avi, one frame per RGB colour in colors (None = random noise)."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    assert writer.isOpened(), "this OpenCV cannot write MJPG .avi"
    rng = np.random.default_rng(0)
    for rgb in colors:
        if rgb is None:
            frame = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        else:
            frame = np.zeros((size, size, 3), np.uint8)
            frame[:] = rgb[::-1]  # BGR
        writer.write(frame)
    writer.release()
    return path


# --- hand landmarks ---------------------------------------------------------------------

def fake_hand(seed=0):
    """A plausible hand's 21 landmarks: wrist at the origin, middle knuckle straight up, fingers above."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 30, (21, 3))
    p[0] = 0
    p[9] = (0, -80, 0)
    return p


def turned(p, angle):
    """The hand turned by `angle` in the frame (positive: the knuckle leans towards +x)."""
    c, s = math.cos(angle), math.sin(angle)
    out = p.copy()
    out[:, :2] = p[:, :2] @ np.array([[c, -s], [s, c]]).T
    return out


# --- running the CLI -------------------------------------------------------------------

# Runs `asl-run` as `python -m asl_edge.runtime.cli` would, with torch, torchvision and onnx
# (and mediapipe) made unimportable first: any import of them by the runtime fails the run.
TORCH_FREE_RUNNER = """
import runpy, sys
for name in ("torch", "torchvision", "onnx", "mediapipe"):
    sys.modules[name] = None
sys.argv = ["asl-run"] + sys.argv[1:]
runpy.run_module("asl_edge.runtime.cli", run_name="__main__", alter_sys=True)
"""


def run_cli(*args, cwd=None, timeout=60):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", TORCH_FREE_RUNNER, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, *fragments):
    """Non-zero exit, stderr is exactly one "error: ..." line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
