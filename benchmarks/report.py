"""Machine description, the results table (terminal and Markdown), bench.json/bench.md and plots."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path

COLUMNS = ("model", "format", "provider", "status", "size MB", "top-1 %", "top-5 %", "agree %",
           "p50 ms", "p90 ms", "p99 ms", "img/s", "peak RSS MB", "first inf ms")
TEXT_COLUMNS = 4  # left-aligned; the rest are numbers


# --- machine --------------------------------------------------------------------------------

def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_model(text: str) -> str:
    """x86 says 'model name'; Raspberry Pi / ARM kernels say 'Model' or 'Hardware'."""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def physical_cores(text: str):
    pairs = set()
    phys = None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "physical id":
            phys = value.strip()
        elif name.strip() == "core id":
            pairs.add((phys, value.strip()))
    return len(pairs) or None


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _mem_total_mb():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpus():
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [l.strip() for l in out.splitlines() if l.strip()]


def machine_info(threads: int) -> dict:
    import onnxruntime as ort

    from asl_edge.common.cpu import int8_isa

    text = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(text), "int8_isa": int8_isa(), "logical_cores": os.cpu_count(), "usable_cores": usable,
        "physical_cores": physical_cores(text), "threads": threads, "memory_mb": _mem_total_mb(),
        "gpus": _gpus(), "os": platform.platform(), "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("asl-edge", "numpy", "onnxruntime", "onnxruntime-gpu", "torch",
                                              "torchvision", "opencv-python-headless")},
        "onnxruntime_providers": ort.get_available_providers(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# --- tables ---------------------------------------------------------------------------------

def _f(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def table_cells(bench: dict, ds: dict) -> list:
    """One list of strings per model row, for one data set."""
    rows = []
    for m in bench["models"]:
        r = ds["results"].get(m["id"], {})
        lat, thr = m.get("latency_ms") or {}, m.get("throughput") or {}
        agree = (r.get("agreement") or {}).get("top1_pct")
        rows.append([m["id"].rsplit("@", 1)[0] + (" (ref)" if m["reference"] else ""), m["format"], m["provider"],
                     m["status"], _f(m["size_mb"]), _f(r.get("top1_pct")), _f(r.get("top5_pct")), _f(agree),
                     _f(lat.get("p50"), 2), _f(lat.get("p90"), 2), _f(lat.get("p99"), 2), _f(thr.get("img_per_s")),
                     _f(m.get("peak_rss_mb"), 0), _f(m.get("first_inference_ms"), 0)])
    return rows


def _title(bench, ds):
    return (f"data {ds['name']}: {ds['n_images']} images, {len(ds['class_counts'])} classes; "
            f"reference {bench['reference']}; batch-1 latency, throughput at batch {bench['settings']['batch']}, "
            f"{bench['machine']['threads']} threads; INT8 on {bench['machine'].get('int8_isa', '?')}")


def _notes(bench):
    return [f"{m['id']}: {m['status']}: {m['reason']}" for m in bench["models"] if m["status"] != "ok"]


def text_table(bench: dict, ds: dict) -> str:
    cells = table_cells(bench, ds)
    widths = [max(len(c[i]) for c in [list(COLUMNS)] + cells) for i in range(len(COLUMNS))]

    def line(cs):
        return "  ".join(c.ljust(w) if i < TEXT_COLUMNS else c.rjust(w) for i, (c, w) in enumerate(zip(cs, widths)))

    return "\n".join([_title(bench, ds), line(COLUMNS)] + [line(c) for c in cells] + _notes(bench))


def markdown_table(bench: dict, ds: dict) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" if i < TEXT_COLUMNS else "---:" for i in range(len(COLUMNS))) + "|"
    return "\n".join([head, rule] + ["| " + " | ".join(c) + " |" for c in table_cells(bench, ds)])


def markdown(bench: dict, plots: list) -> str:
    m, s = bench["machine"], bench["settings"]
    runs = f"{s['runs']} runs" if s["runs"] is not None else f"{s['time_budget_s']:g} s budget"
    lines = ["# asl-bench results", "",
             f"- date: {m['date']}", f"- command: `{bench['command']}`",
             f"- CPU: {m['cpu']}, INT8 instruction set {m.get('int8_isa', '?')} ({m['physical_cores'] or '?'} physical / {m['logical_cores']} logical cores, "
             f"{m['usable_cores']} usable), {m['memory_mb'] or '?'} MB RAM" + (f"; GPU: {', '.join(m['gpus'])}" if m["gpus"] else ""),
             f"- OS: {m['os']}; Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
             f"- threads {s['threads']}, batch-1 latency over {runs} after {s['warmup']} warm-up runs, "
             f"throughput at batch {s['batch']}, at most {s['max_images'] or 'all'} images per data set",
             f"- reference: {bench['reference']} (agreement and accuracy drop are against it)", ""]
    for ds in bench["datasets"]:
        lines += [f"## {ds['name']}", "", f"{ds['n_images']} images, {len(ds['class_counts'])} classes", "",
                  markdown_table(bench, ds), ""]
    notes = _notes(bench)
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    c = bench["checks"]
    lines += ["## Checks", "", "passed" if c["passed"] else "FAILED", ""]
    lines += [f"- {v}" for v in c["failed_models"] + c["violations"]]
    if plots:
        lines += ["", "## Plots", ""] + [f"- [{p}]({p})" for p in plots]
    return "\n".join(lines).rstrip() + "\n"


# --- files ----------------------------------------------------------------------------------

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write_plots(bench: dict, out: Path, atomic_write) -> list:
    """Confusion matrix per model and data set, and the latency distributions; [] without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    import numpy as np

    def save(fig, rel):
        atomic_write(out / rel, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
        plt.close(fig)
        return rel

    written, classes = [], bench["classes"]
    for k, ds in enumerate(bench["datasets"]):
        for rid, r in ds["results"].items():
            cm = np.asarray(r["confusion"])
            fig, ax = plt.subplots(figsize=(8, 7))
            ax.imshow(cm, cmap="Blues")
            ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
            ax.set_yticks(range(len(classes)), classes, fontsize=7)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{rid} on {ds['name']}\ntop-1 {r['top1_pct']:.1f}% of {ds['n_images']}", fontsize=9)
            written.append(save(fig, f"plots/confusion_{k}_{_safe(rid)}.png"))
    timed = [m for m in bench["models"] if (m.get("latency_ms") or {}).get("samples")]
    if timed:
        fig, ax = plt.subplots(figsize=(8, 0.6 * len(timed) + 1.5))
        ax.boxplot([m["latency_ms"]["samples"] for m in timed], vert=False, showfliers=True)
        ax.set_yticks(range(1, len(timed) + 1), [m["id"] for m in timed], fontsize=8)
        ax.set_xscale("log")  # INT8 on CPU and PyTorch differ by 10x or more; outliers by more
        ax.set_xlabel("batch-1 latency (ms, log scale)")
        ax.set_title("latency distribution (warm-up excluded)", fontsize=9)
        written.append(save(fig, "plots/latency.png"))
    return written


def write_all(bench: dict, out: Path, plots: bool = True):
    from asl_edge.common.fileio import atomic_write, json_text

    written = write_plots(bench, out, atomic_write) if plots else []
    bench["plots"] = written
    atomic_write(out / "bench.json", lambda tmp: Path(tmp).write_text(json_text(bench, indent=1) + "\n"))
    atomic_write(out / "bench.md", lambda tmp: Path(tmp).write_text(markdown(bench, written)))
