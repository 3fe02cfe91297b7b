"""Footfall counting: accuracy against exact or hand-verified truth, and speed against decoding alone, on one core.

Two kinds of footage:

- synthetic door videos (default): figures with exact ground truth from their
  paths (edge_agent/footfall/synthetic.py), three 120-second videos;
- real footage with a hand count (`--truth TRUTH.json`): every counted crossing
  is matched to a hand-labelled one of the same direction within 15 frames, and
  precision, recall and F1 are printed per line and direction beside the totals
  (benchmarks/truth/vtest.json: OpenCV's vtest.avi, from the opencv-doc package).

The speed baseline is decoding the same video with OpenCV and nothing else,
measured in the same run, interleaved with the pipeline runs; times are the
process's CPU time (one OpenCV thread), so other work on the machine does not
bend the ratio. The pipeline runs every frame for the speed figure (no fps
budget) and at the settings' budget for the accuracy figure.

Usage:
  .venv/bin/python benchmarks/footfall.py [--seconds 120] [--seeds 3] [--profile]
  .venv/bin/python benchmarks/footfall.py --truth benchmarks/truth/vtest.json [--video PATH] [--verbose]
  ... [--config edge_agent/profiles/rpi4.toml] [--set KEY=VALUE ...]

--profile adds where a frame's time goes (cProfile, milliseconds per frame, own time per function).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.footfall import CameraSettings, FootfallPipeline  # noqa: E402
from edge_agent.footfall.command import resolve_settings  # noqa: E402
from edge_agent.footfall.evaluation import Score, TruthLine, load_truth, score_line, unmatched  # noqa: E402
from edge_agent.footfall.synthetic import SceneSpec, make_scene  # noqa: E402

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def decode_only(video: Path) -> tuple[int, float]:
    """Frames in the video and the CPU seconds OpenCV takes to grab and decode them all."""
    capture = cv2.VideoCapture(str(video))
    start = time.process_time()
    frames = 0
    while capture.grab():
        capture.retrieve()
        frames += 1
    capture.release()
    return frames, time.process_time() - start


def pipeline_fps(settings: CameraSettings, video: Path) -> float:
    """Frames per CPU second of the whole pipeline (decode included) over every frame of the video."""
    pipeline = FootfallPipeline(settings.with_overrides(fps_budget=120), str(video))
    start = time.process_time()
    result = pipeline.run()
    return result.frames / (time.process_time() - start)


def speed(settings: CameraSettings, video: Path, repeats: int) -> tuple[float, float]:
    """Median pipeline and decode-only fps, measured in turns so both see the same machine."""
    pipeline, decode = [], []
    for _ in range(repeats):
        frames, seconds = decode_only(video)
        decode.append(frames / seconds)
        pipeline.append(pipeline_fps(settings, video))
    return statistics.median(pipeline), statistics.median(decode)


def profile(settings: CameraSettings, video: Path, top: int = 8) -> None:
    """The functions a frame's time goes to (own time, not counting callees), in ms per frame."""
    profiler = cProfile.Profile()
    result = profiler.runcall(FootfallPipeline(settings.with_overrides(fps_budget=120), str(video)).run)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(((own, func) for func, (_calls, _prim, own, _cum, _callers) in stats.items()), reverse=True)
    total = sum(own for own, _ in rows)
    print(f"per frame ({result.frames} frames, cProfile): {1000 * total / result.frames:.2f} ms in all")
    for own, (file, line, name) in rows[:top]:
        where = name if file == "~" else f"{Path(file).name}:{line} {name}"
        print(f"  {1000 * own / result.frames:5.2f} ms  {where}")


def f1_line(name: str, scores: dict[str, Score]) -> str:
    parts = [
        f"{d} P {s.precision:.2f} R {s.recall:.2f} F1 {s.f1:.2f} ({s.matched} matched, {s.counted} counted, {s.truth} true)"
        for d, s in scores.items()
    ]
    return f"{name}: " + "; ".join(parts)


def totals_line(entries: int, true_entries: int, exits: int, true_exits: int) -> str:
    def share(got: int, true: int) -> str:
        return f"{(got - true) / true:+.1%}" if true else "n/a"

    return f"totals: entries {entries}/{true_entries} ({share(entries, true_entries)}), exits {exits}/{true_exits} ({share(exits, true_exits)})"


def run_truth(args: argparse.Namespace, make_settings: Callable[..., CameraSettings]) -> None:
    truth_path = Path(args.truth)
    video = Path(args.video) if args.video else VTEST
    lines = load_truth(truth_path)
    capture = cv2.VideoCapture(str(video))
    size = f"{int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    capture.release()
    crossings = sum(len(line.crossings) for line in lines)
    print(f"{video.name} {size}; truth {truth_path} ({len(lines)} lines, {crossings} crossings, matched within 15 frames)")
    overall: dict[str, Score] = {}
    for line in lines:
        result = FootfallPipeline(make_settings(line=line.segment), str(video)).run()
        scores = score_line(result.crossings, line)
        overall = {d: overall[d] + s if d in overall else s for d, s in scores.items()}
        print(f"line {line.name} {','.join(f'{v:g}' for v in line.segment)}")
        print("  " + f1_line("", scores)[2:])
        print("  " + totals_line(scores["entry"].counted, scores["entry"].truth, scores["exit"].counted, scores["exit"].truth))
        if args.verbose:
            for direction in ("entry", "exit"):
                mine = [int(c["frame"]) for c in result.crossings if c["direction"] == direction]
                theirs = [f for f, d in line.crossings if d == direction]
                invented, missed = unmatched(mine, theirs)
                print(f"  {direction}: invented at frames {invented}, missed at frames {missed}")
    print(f1_line("all lines", overall))
    print(totals_line(overall["entry"].counted, overall["entry"].truth, overall["exit"].counted, overall["exit"].truth))
    settings = make_settings(line=lines[0].segment)
    fps, decode = speed(settings, video, args.repeats)
    print(f"pipeline, 1 thread, resize to {settings.resize_width}: {fps:,.0f} fps (median of {args.repeats}, CPU time)")
    print(f"decode only: {decode:,.0f} fps")
    print(f"ratio pipeline/decode: {fps / decode:.2f}")
    if args.profile:
        profile(settings, video)


def run_synthetic(args: argparse.Namespace, make_settings: Callable[..., CameraSettings]) -> None:
    total: dict[str, Score] = {}
    ratios, speeds, decodes = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            spec = SceneSpec(width=args.width, height=args.height, seconds=args.seconds, seed=seed, people_per_minute=30)
            scene = make_scene(spec)
            video = scene.write(Path(folder) / f"door-{seed}.avi")
            settings = make_settings(line=spec.line)
            fps, decode = speed(settings, video, 1)
            speeds.append(fps)
            decodes.append(decode)
            ratios.append(fps / decode)
            if args.profile and seed == 0:
                profile(settings, video)
            counted = FootfallPipeline(settings, str(video)).run()  # at the box's budget: the accuracy figure
            truth = {
                "entry": [round(t * spec.fps) for t, d in scene.crossings if d > 0],
                "exit": [round(t * spec.fps) for t, d in scene.crossings if d < 0],
            }
            line = TruthLine("door", spec.line, tuple((f, d) for d, frames in truth.items() for f in frames))
            scores = score_line(counted.crossings, line)
            total = {d: total[d] + s if d in total else s for d, s in scores.items()}
            print(
                f"seed {seed}: {scene.frame_count} frames {args.width}x{args.height}; pipeline {fps:,.0f} fps,"
                f" decode only {decode:,.0f} fps; in {counted.entries}/{scene.entries}, out {counted.exits}/{scene.exits};"
                f" F1 {scores['both'].f1:.2f}"
            )
    resize = make_settings(line=(0, 0, 1, 1)).resize_width
    print(f"pipeline, 1 thread, resize to {resize}: {statistics.median(speeds):,.0f} fps (median of {len(speeds)}, CPU time)")
    print(f"decode only: {statistics.median(decodes):,.0f} fps")
    print(f"ratio pipeline/decode: {statistics.median(ratios):.2f}")
    print(totals_line(total["entry"].counted, total["entry"].truth, total["exit"].counted, total["exit"].truth))
    print(f1_line("matched within 15 frames", total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", help="hand-labelled crossings (JSON) for --video; without it, synthetic videos")
    parser.add_argument("--video", help=f"the video the truth is for (default {VTEST})")
    parser.add_argument("--config", type=Path, help="device profile whose [camera] table to use")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="camera setting KEY=VALUE")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--seeds", type=int, default=3, help="synthetic videos for the accuracy figure")
    parser.add_argument("--repeats", type=int, default=3, help="speed measurements on the truth video")
    parser.add_argument("--profile", action="store_true", help="print milliseconds per frame by function")
    parser.add_argument("--verbose", "-v", action="store_true", help="list invented and missed crossings")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    base = resolve_settings(args.config, None, args.overrides)

    def make_settings(**changes: object) -> CameraSettings:
        return base.with_overrides(**changes)

    if args.truth:
        run_truth(args, make_settings)
    else:
        run_synthetic(args, make_settings)


if __name__ == "__main__":
    main()
