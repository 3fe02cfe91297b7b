"""Nothing but counts is kept: no frame, crop or image is written to disk or sent anywhere."""

from __future__ import annotations

import ast
import os
import sqlite3
from pathlib import Path

import cv2
import pytest

from edge_agent.footfall import CameraSettings, FootfallPipeline, FootfallStorage
from edge_agent.footfall.synthetic import simple_scene
from edge_agent.store_db import open_store_db

PACKAGE = Path(__file__).resolve().parents[2] / "edge_agent" / "footfall"
RUNTIME = sorted(p for p in PACKAGE.glob("*.py") if p.name != "synthetic.py")
WRITERS = {"imwrite", "imencode", "VideoWriter", "VideoWriter_fourcc", "FileStorage", "imwritemulti"}
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"\x1aE\xdf\xa3", b"BM", b"II*", b"MM*")
NETWORK = {"socket", "urllib", "http", "requests", "paho", "ftplib", "smtplib"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[float, float, float, float], tuple[int, int]]:
    scene = simple_scene([1, -1])
    video = scene.write(tmp_path_factory.mktemp("clip") / "door.avi")
    return video, scene.spec.line, (scene.entries, scene.exits)


def snapshot(*roots: Path) -> set[Path]:
    return {Path(folder) / name for root in roots for folder, _, names in os.walk(root) for name in names}


@pytest.mark.parametrize("module", RUNTIME, ids=lambda p: p.name)
def test_runtime_code_has_no_way_to_write_or_send_an_image(module: Path) -> None:
    tree = ast.parse(module.read_text())
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
    }
    assert not names & WRITERS, f"{module.name} uses {sorted(names & WRITERS)}"
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0] if node.level == 0 else f".{node.module}")
    assert not imported & NETWORK, f"{module.name} imports {sorted(imported & NETWORK)}"
    assert ".synthetic" not in imported, "the video generator is for tests and demos only"


def test_a_run_with_every_image_writer_booby_trapped(
    clip: tuple[Path, tuple[float, float, float, float], tuple[int, int]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video, line, truth = clip

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was about to be written")

    for name in ("imwrite", "imencode", "VideoWriter", "imwritemulti"):
        monkeypatch.setattr(cv2, name, refuse)
    before = snapshot(tmp_path)
    with open_store_db(tmp_path / "s.db") as store:
        result = FootfallPipeline(CameraSettings(line=line), str(video), storage=FootfallStorage(store)).run()
    assert (result.entries, result.exits) == truth
    assert {p.name for p in snapshot(tmp_path) - before} <= {"s.db", "s.db-wal", "s.db-shm"}


def test_the_command_leaves_only_the_store_database_behind(
    clip: tuple[Path, tuple[float, float, float, float], tuple[int, int]], tmp_path: Path
) -> None:
    video, line, truth = clip
    work, home, tmp = tmp_path / "work", tmp_path / "home", tmp_path / "tmp"
    for folder in (work, home, tmp):
        folder.mkdir()
    before = snapshot(tmp_path, video.parent)
    env = {"HOME": str(home), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(home / ".cache")}
    result = _run_in(work, env, video, line)
    assert result.returncode == 0, result.stderr
    new = {p.relative_to(tmp_path) for p in snapshot(tmp_path, video.parent) - before}
    assert new <= {Path("work/store.db"), Path("work/store.db-wal"), Path("work/store.db-shm")}
    for path in new:
        head = (tmp_path / path).read_bytes()[:12]
        assert not head.startswith(IMAGE_MAGIC) and head[8:12] not in (b"AVI ", b"WEBP"), f"{path} looks like an image"
    conn = sqlite3.connect(work / "store.db")
    assert conn.execute("SELECT sum(entries), sum(exits) FROM footfall").fetchone() == truth
    blobs = conn.execute(
        "SELECT count(*) FROM sqlite_master m JOIN pragma_table_info(m.name) c WHERE m.type = 'table' AND c.type = 'BLOB'"
        " AND m.name != 'quarantine'"
    ).fetchone()[0]
    assert blobs == 0, "no table but the POS quarantine holds raw bytes"


def _run_in(cwd: Path, env: dict[str, str], video: Path, line: tuple[float, ...]):  # type: ignore[no-untyped-def]
    import subprocess

    from tests.conftest import VENV_BIN

    command = [str(VENV_BIN / "edge-agent"), "footfall", "--source", str(video), "--line", ",".join(f"{v:g}" for v in line),
               "--db", "store.db", "--json"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
