"""Footfall pipeline throughput and accuracy on a synthetic door-camera video, on one core.

The baseline is decoding the same video with OpenCV and nothing else, measured
in the same run: the ratio pipeline/decode says what detection, tracking and
counting cost on top of the decode every camera pays anyway. Counts are
compared with the video's exact ground truth.

Usage: .venv/bin/python benchmarks/footfall.py [--seconds 120] [--width 640] [--height 480] [--seeds 3] [--profile]

--profile adds where a frame's time goes (cProfile over the first video, milliseconds per frame).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.footfall import CameraSettings, FootfallPipeline  # noqa: E402
from edge_agent.footfall.synthetic import SceneSpec, make_scene  # noqa: E402


def decode_only(video: Path) -> tuple[int, float]:
    capture = cv2.VideoCapture(str(video))
    start = time.perf_counter()
    frames = 0
    while capture.grab():
        capture.retrieve()
        frames += 1
    capture.release()
    return frames, time.perf_counter() - start


def profile(settings: CameraSettings, video: Path, top: int = 6) -> None:
    """The functions a frame's time goes to (own time, not counting callees), in ms per frame."""
    profiler = cProfile.Profile()
    result = profiler.runcall(FootfallPipeline(settings, str(video)).run)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(((own, func) for func, (_calls, _prim, own, _cum, _callers) in stats.items()), reverse=True)
    total = sum(own for own, _ in rows)
    print(f"per frame ({result.frames} frames, cProfile): {1000 * total / result.frames:.2f} ms in all")
    for own, (file, line, name) in rows[:top]:
        where = name if file == "~" else f"{Path(file).name}:{line} {name}"
        print(f"  {1000 * own / result.frames:5.2f} ms  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--resize-width", type=int, default=320)
    parser.add_argument("--seeds", type=int, default=3, help="videos for the accuracy figure")
    parser.add_argument("--profile", action="store_true", help="print milliseconds per frame by function")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    truth_in = truth_out = got_in = got_out = 0
    ratios, speeds, decodes = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            spec = SceneSpec(width=args.width, height=args.height, seconds=args.seconds, seed=seed, people_per_minute=30)
            scene = make_scene(spec)
            video = scene.write(Path(folder) / f"door-{seed}.avi")
            frames, decode_seconds = decode_only(video)
            # Every frame processed (no fps budget): the throughput figure.
            settings = CameraSettings(line=spec.line, resize_width=args.resize_width, fps_budget=120)
            result = FootfallPipeline(settings, str(video)).run()
            speeds.append(result.fps)
            decodes.append(frames / decode_seconds)
            ratios.append(result.fps / (frames / decode_seconds))
            if args.profile and seed == 0:
                profile(settings, video)
            # At a box's budget (10 fps of a 15 fps camera): the accuracy figure.
            counted = FootfallPipeline(CameraSettings(line=spec.line, resize_width=args.resize_width), str(video)).run()
            truth_in, truth_out = truth_in + scene.entries, truth_out + scene.exits
            got_in, got_out = got_in + counted.entries, got_out + counted.exits
            print(
                f"seed {seed}: {frames} frames {args.width}x{args.height}; pipeline {result.fps:,.0f} fps,"
                f" decode only {frames / decode_seconds:,.0f} fps; in {counted.entries}/{scene.entries},"
                f" out {counted.exits}/{scene.exits}"
            )
    print(f"pipeline, 1 thread, resize to {args.resize_width}: {statistics.median(speeds):,.0f} fps (median of {len(speeds)})")
    print(f"decode only: {statistics.median(decodes):,.0f} fps")
    print(f"ratio pipeline/decode: {statistics.median(ratios):.2f}")
    print(
        f"accuracy: entries {got_in}/{truth_in} ({(got_in - truth_in) / truth_in:+.1%}),"
        f" exits {got_out}/{truth_out} ({(got_out - truth_out) / truth_out:+.1%})"
    )


if __name__ == "__main__":
    main()
