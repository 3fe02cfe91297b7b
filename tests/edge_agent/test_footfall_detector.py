"""Blobs into people: light that changes across the picture, masks, couples cut apart, and person sizes learned."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.footfall import CameraSettings
from edge_agent.footfall.detector import WARM_UP_FRAMES, BlobDetector, heads
from edge_agent.footfall.person_size import MIN_SAMPLES, PersonSize

RNG = np.random.default_rng(0)
FLOOR = np.clip(120 + 25 * cv2.resize(RNG.normal(0, 1, (30, 40, 3)).astype(np.float32), (320, 240)), 0, 255)


def noisy(image: np.ndarray) -> np.ndarray:
    return np.clip(image + RNG.normal(0, 2, image.shape), 0, 255).astype(np.uint8)


def person(image: np.ndarray, x: int, foot: int, height: int = 60, colour: tuple[int, int, int] = (40, 30, 150)) -> None:
    width = int(0.4 * height)  # shoulders to the side, a head on top: a head-high bump per person
    cv2.rectangle(image, (x - width // 2, foot - int(0.8 * height)), (x + width // 2, foot), colour, -1)
    cv2.circle(image, (x, foot - int(0.9 * height)), max(2, int(0.09 * height)), (90, 120, 200), -1)


def detector(**settings: object) -> BlobDetector:
    found = BlobDetector(CameraSettings(line=(0, 120, 320, 120), **settings))  # type: ignore[arg-type]
    found.learn_empty_scene([found.prepare(noisy(FLOOR)) for _ in range(WARM_UP_FRAMES)])
    return found


def test_light_changing_smoothly_across_the_picture_is_not_taken_for_people() -> None:
    """A cloud passing: the top of the picture brightens by a quarter over two seconds; someone walks under it."""
    blobs = detector()
    counts = []
    for k in range(40):
        gain = 1 + 0.25 * min(1.0, k / 20) * np.linspace(1, 0, 240)[:, None, None]
        frame = FLOOR * gain
        if k >= 30:
            person(frame, 160, 150 + 3 * k)
        counts.append(len(blobs.detect(blobs.prepare(noisy(frame)), 0.1)))
    assert counts[:30] == [0] * 30
    assert counts[30:] == [1] * 10


def test_nothing_moving_inside_a_mask_makes_a_blob() -> None:
    door = [[200, 20], [300, 20], [300, 220], [200, 220]]
    masked, open_ = detector(masks=[door]), detector()
    for k in range(10):
        frame = FLOOR.copy()
        person(frame, 250, 120 + 8 * k)  # the door swinging, a screen playing
        person(frame, 80, 120 + 8 * k)
        seen_masked = masked.detect(masked.prepare(noisy(frame)), 0.1)
        seen_open = open_.detect(open_.prepare(noisy(frame)), 0.1)
    assert len(seen_open) == 2
    assert len(seen_masked) == 1 and seen_masked.boxes[0, 0] == pytest.approx(80, abs=6)


def test_a_couple_side_by_side_is_cut_between_their_heads_a_bag_is_not() -> None:
    blobs = detector()
    frame = FLOOR.copy()
    person(frame, 100, 200)
    person(frame, 124, 200, colour=(150, 40, 40))  # touching shoulders: one blob
    person(frame, 240, 200)
    cv2.rectangle(frame, (252, 150), (272, 175), (30, 30, 30), -1)  # a bag held out at the side
    found = blobs.detect(blobs.prepare(noisy(frame)), 0.1)
    xs = sorted(round(x) for x in found.boxes[:, 0])
    assert len(xs) == 3
    assert xs[0] == pytest.approx(100, abs=8) and xs[1] == pytest.approx(124, abs=8)
    assert found.groups[np.argsort(found.boxes[:, 0])][0] == found.groups[np.argsort(found.boxes[:, 0])][1]


def test_heads_are_the_separate_bumps_of_a_blobs_top_edge() -> None:
    two = np.array([10, 30, 50, 52, 50, 30, 25, 30, 50, 54, 50, 30, 10], dtype=float)
    arm = np.array([10, 30, 50, 52, 50, 30, 25, 28, 30, 20, 10], dtype=float)
    assert len(heads(two, min_gap=4, min_dip=8)) == 2
    assert len(heads(arm, min_gap=4, min_dip=8)) == 1


def test_person_size_is_learned_from_whole_people_and_outliers_do_not_bend_it() -> None:
    size = PersonSize(768, 576)
    rng = np.random.default_rng(1)
    assert not size.expected(300, 400, blob_height=77).known
    assert size.expected(300, 400, blob_height=77).height == 77  # before learning: the blob's own height
    for _ in range(MIN_SAMPLES + 60):
        y = rng.uniform(150, 570)
        height = 40 + 0.2 * y + rng.normal(0, 2)
        if rng.random() < 0.1:
            height *= 2  # two people taken for one
        size.observe(rng.uniform(0, 768), y, 0.4 * height, height)
    expected = size.expected(300, 400)
    assert expected.known
    assert expected.height == pytest.approx(120, rel=0.05)
    assert expected.width == pytest.approx(0.4 * 120, rel=0.1)
    size.observe(100, 300, 100, 20)  # lying down, a trolley: not a person's shape, ignored
    assert size.samples[-1][3] != 20
