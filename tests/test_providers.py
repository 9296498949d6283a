"""Where the classifier and the hand finder run: asl-run's --provider rule (auto, cpu, cuda).
Measured on a GPU by scripts/gpu_check.sh; here, without one, the choice itself is checked."""
import json

from asl_edge.runtime.model import OnnxClassifier
from onnx_fixtures import RED, make_tiny_onnx, write_image


def _tag_precision(path, precision):
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    # pair-safe, as asl-export writes today: the VNNI note of older full-range files is another test's
    entry.key, entry.value = "asl_edge.export", json.dumps({"precision": precision, "weight_range": "pair-safe"})
    onnx.save(model, str(path))
    return path


def test_auto_keeps_int8_files_off_cuda(tmp_path, monkeypatch, logged):
    """On a GPU, INT8 (QDQ) files run slower on CUDA than on the CPU (scripts/gpu_check.sh): 'auto'
    keeps them on the CPU, an explicit 'cuda' is obeyed with a note, float files go to CUDA.
    This machine has no GPU, so onnxruntime's session is wrapped to report the providers asked for."""
    import onnxruntime as ort

    from asl_edge.runtime import model as model_mod

    real = ort.InferenceSession

    class ReportsAskedProviders(real):
        def __init__(self, path, sess_options=None, providers=None, **kw):
            super().__init__(path, sess_options=sess_options, providers=["CPUExecutionProvider"])
            self.asked = list(providers)

        def get_providers(self):
            return self.asked

    cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "InferenceSession", ReportsAskedProviders)
    monkeypatch.setattr(model_mod, "choose_providers",
                        lambda p: ["CPUExecutionProvider"] if p == "cpu" else cuda)
    int8 = _tag_precision(make_tiny_onnx(tmp_path / "int8.onnx"), "int8")
    fp16 = _tag_precision(make_tiny_onnx(tmp_path / "fp16.onnx"), "fp16")
    notes = logged
    assert OnnxClassifier(int8, provider="auto").providers == ["CPUExecutionProvider"]
    assert OnnxClassifier(int8, provider="cpu").providers == ["CPUExecutionProvider"]
    assert notes == []
    assert OnnxClassifier(int8, provider="cuda").providers == cuda
    assert len(notes) == 1 and "slower on CUDA" in notes[0]
    assert OnnxClassifier(fp16, provider="auto").providers == cuda


def test_provider_reaches_the_hand_finder(tmp_path, monkeypatch, capsys):
    """--provider applies to the hand finder's two models too (on a GPU, palm detection and landmarks
    run on CUDA: 6.8 vs 24.4 ms per image in scripts/gpu_check.sh), by the classifier's own rule."""
    from asl_edge.runtime import cli
    from asl_edge.runtime.hands import tracker as hands

    color_model = make_tiny_onnx(tmp_path / "color.onnx", kind="color")
    write_image(tmp_path / "set" / "A" / "red.png", RED)
    asked, real = [], hands.choose_providers
    monkeypatch.setattr(hands, "choose_providers", lambda provider: asked.append(provider) or real("cpu"))
    cli.run_files([str(tmp_path / "set")], cli.RunOptions(model=color_model, provider="cuda"))
    assert asked == ["cuda", "cuda"]  # palm detector and landmark model
    assert "hands: found in 0/" in capsys.readouterr().out
    asked.clear()
    cli.run_files([str(tmp_path / "set")], cli.RunOptions(model=color_model, provider="auto", roi="full"))
    assert asked == []  # no hand finder without --roi hand
