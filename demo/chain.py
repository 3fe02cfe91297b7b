"""The demo's world: a simulated chain up to yesterday, and a short door-camera clip per store.

Everything is made through the operators' own commands where one exists
(`churn-server simulate`), so the demo exercises the same contracts a real
deployment uses; the clips come from the synthetic video generator, with their
exact ground truth kept for the summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from edge_agent.footfall.synthetic import make_scene

from .processes import VENV_BIN, run_command

CHAIN = "demo"
CLIP_SIZE = (320, 240)  # the synthetic scene's frame; its counting line runs across the middle


@dataclass(frozen=True)
class DemoSpec:
    stores: int = 6
    customers: int = 1500
    days: int = 450
    rounds: int = 3
    seed: int = 7
    clip_seconds: float = 30.0

    @property
    def end(self) -> date:
        """The history ends yesterday, so the boxes score today as a live store would."""
        return date.today() - timedelta(days=1)


@dataclass(frozen=True)
class StoreFiles:
    store_id: str
    pos: Path
    footfall: Path
    clip: Path
    clip_truth: tuple[int, int]  # entries, exits


def simulate(spec: DemoSpec, out: Path, log: Path) -> list[dict[str, object]]:
    """`churn-server simulate` into out/chain; the per-store summaries it prints."""
    text = run_command([str(VENV_BIN / "churn-server"), "simulate", "--out", str(out), "--stores", str(spec.stores),
                        "--customers-per-store", str(spec.customers), "--days", str(spec.days),
                        "--seed", str(spec.seed), "--end", spec.end.isoformat(), "--json"], log)
    return json.loads(text)  # type: ignore[no-any-return]


def make_clips(spec: DemoSpec, chain_dir: Path, summaries: list[dict[str, object]]) -> list[StoreFiles]:
    files = []
    for index, summary in enumerate(summaries):
        store_id = str(summary["store_id"])
        scene = make_scene(seconds=spec.clip_seconds, seed=spec.seed * 100 + index, fps=10.0,
                           width=CLIP_SIZE[0], height=CLIP_SIZE[1], people_per_minute=24.0)
        clip = scene.write(chain_dir / store_id / "door.avi")
        files.append(StoreFiles(store_id, chain_dir / str(summary["pos_file"]), chain_dir / str(summary["footfall_file"]),
                                clip, (scene.entries, scene.exits)))
    return files


def counting_line() -> list[int]:
    """Left to right across the middle of the clip: walking down (into the store) is an entry."""
    return [0, CLIP_SIZE[1] // 2, CLIP_SIZE[0], CLIP_SIZE[1] // 2]
