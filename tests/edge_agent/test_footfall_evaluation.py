"""Counted crossings against a hand count: one-to-one matches within a tolerance, per direction, and the truth files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.footfall.evaluation import TruthLine, load_truth, match_frames, score_line, unmatched
from edge_agent.footfall.settings import FootfallError

TRUTH = Path(__file__).resolve().parents[2] / "benchmarks" / "truth" / "vtest.json"


def test_matching_is_one_to_one_and_finds_the_most_pairs() -> None:
    # Pairing each count with its nearest truth would pair 16 with 14 and leave two unmatched.
    assert match_frames([10, 16], [14, 22], tolerance=6) == [(10, 14), (16, 22)]
    assert match_frames([100, 101, 102], [101], tolerance=15) == [(100, 101)]  # one truth, one count
    assert match_frames([10], [30], tolerance=15) == []


def test_invented_and_missed_are_what_the_matching_leaves() -> None:
    assert unmatched([5, 50, 51], [52, 90]) == ([5, 51], [90])


def test_scores_per_direction_never_match_across_directions() -> None:
    truth = TruthLine("door", (0, 0, 1, 1), ((100, "entry"), (200, "exit"), (300, "entry")))
    counted = [{"frame": 101, "direction": "entry"}, {"frame": 199, "direction": "entry"}, {"frame": 305, "direction": "entry"}]
    scores = score_line(counted, truth)
    assert (scores["entry"].matched, scores["entry"].counted, scores["entry"].truth) == (2, 3, 2)
    assert (scores["exit"].matched, scores["exit"].counted, scores["exit"].truth) == (0, 0, 1)
    assert scores["entry"].precision == pytest.approx(2 / 3) and scores["entry"].recall == 1.0
    assert scores["both"].f1 == pytest.approx(2 * 2 / (3 + 3))
    assert scores["exit"].precision == 1.0 and scores["exit"].recall == 0.0 and scores["exit"].f1 == 0.0


def test_the_hand_count_of_vtest_loads() -> None:
    lines = load_truth(TRUTH)
    assert [line.name for line in lines] == ["path-west", "plaza-east", "plaza-diagonal"]
    assert sum(len(line.crossings) for line in lines) == 83
    for line in lines:
        frames = [f for f, _ in line.crossings]
        assert frames == sorted(frames) and all(0 <= f < 795 for f in frames)


@pytest.mark.parametrize(
    "content",
    ["not json", json.dumps({"lines": [{"segment": [1, 2, 3], "crossings": []}]}),
     json.dumps({"lines": [{"segment": [1, 2, 3, 4], "crossings": [{"frame": 3, "direction": "in"}]}]}),
     json.dumps({"nothing": []})],
)
def test_a_malformed_truth_file_is_a_one_line_error_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "truth.json"
    path.write_text(content)
    with pytest.raises(FootfallError, match="truth.json: not a footfall truth file"):
        load_truth(path)
    with pytest.raises(FootfallError, match="missing.json"):
        load_truth(tmp_path / "missing.json")
