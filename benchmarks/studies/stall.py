"""Stalled-stream loop: serve an MJPEG-over-HTTP stream that sends some frames and then goes
silent with the connection open (a hung IP camera), run `asl-run --camera URL --no-display` on it
N times, and count how each run ended. Before issue 13 about 1 run in 30 segfaulted (exit 139):
the capture was released while the reader thread was still inside cap.read().

    python -m asl_edge.benchmarks.studies.stall --runs 20 [--frames 30] [--timeout 1]
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import cv2
import numpy as np


def serve(frames: int, stop: threading.Event) -> int:
    """A one-request-at-a-time MJPEG server on localhost; returns its port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = (40, 40, 220)
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    held = []

    def handle(conn):
        try:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for _ in range(frames):
                conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                             + jpeg + b"\r\n")
                time.sleep(1 / 30)
            held.append(conn)  # then silence, with the connection left open
        except OSError:
            pass

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
        srv.close()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m asl_edge.benchmarks.studies.stall", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--frames", type=int, default=30, help="Frames sent before the stream goes silent.")
    p.add_argument("--timeout", type=float, default=1.0, help="asl-run --timeout.")
    p.add_argument("--model", default=None)
    args = p.parse_args(argv)
    stop = threading.Event()
    port = serve(args.frames, stop)
    ends, worst = Counter(), 0.0
    for i in range(args.runs):
        cmd = [sys.executable, "-m", "asl_edge.runtime.cli", "--camera", f"http://127.0.0.1:{port}/video.mjpg",
               "--no-display", "--threads", "1", "--timeout", str(args.timeout)] + (["--model", args.model] if args.model else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        worst = max(worst, time.perf_counter() - t0)
        errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
        clean = (proc.returncode == 2 and len(errors) == 1 and "summary:" in proc.stdout
                 and "Traceback" not in proc.stderr)
        ends[f"exit {proc.returncode}" + (" (summary + one error line)" if clean else "")] += 1
        if not clean:
            print(f"run {i}: exit {proc.returncode}\n{proc.stdout[-400:]}\n{proc.stderr[-600:]}", file=sys.stderr)
    stop.set()
    print(f"{args.runs} runs against a stream that stalls after {args.frames} frames, --timeout {args.timeout:g}: "
          + ", ".join(f"{n} x {k}" for k, n in ends.items()) + f"; slowest run {worst:.1f} s")
    return 0 if all("summary" in k for k in ends) else 1


if __name__ == "__main__":
    raise SystemExit(main())
