"""Make the demo's clip (scripts/demo_clip/): a word fingerspelled by one person of
../shared/data/webcam_recordings, each letter held 1.5 s from that person's letter video, joined
by 0.3 s cross-fades (benchmarks/sequences.py), encoded with ffmpeg's libx264.

    python scripts/make_demo_clip.py ../shared/data/webcam_recordings/lolzorus HELLO scripts/demo_clip/hello_lolzorus.mp4
"""
import subprocess
import sys
from pathlib import Path

from asl_edge.benchmarks.sequences import FPS, SequenceSource, person_videos, plan_word, read_video


def main(person, word, out):
    videos = person_videos(Path(person))
    frames = {c: read_video(videos[c]) for c in set(word.upper())}
    plan = plan_word(word, {c: len(f) for c, f in frames.items()}, videos, round(1.5 * FPS))
    src = SequenceSource(plan, frames, round(0.3 * FPS), word)
    h, w = src.read()[0].shape[:2]
    src = SequenceSource(plan, frames, round(0.3 * FPS), word)
    enc = subprocess.Popen(["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}",
                            "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-crf", "23", "-preset", "slow",
                            "-pix_fmt", "yuv420p", str(out)], stdin=subprocess.PIPE)
    while (got := src.read()) is not None:
        enc.stdin.write(got[0].tobytes())
    enc.stdin.close()
    raise SystemExit(enc.wait())


if __name__ == "__main__":
    main(*sys.argv[1:4])
