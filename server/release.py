"""Releasing a model to the stores: sign it, keep a copy, publish it retained on the model topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.contracts import model_topic
from models.release import build_release, load_private_key
from transport.mqtt import BrokerConfig, publish_retained



def release_model(
    model_dir: Path, chain: str, signing_key: Path, *, broker: BrokerConfig | None = None, out: Path | None = None,
    rollback: bool = False,
) -> dict[str, Any]:
    """Sign `model_dir` for `chain`; write the document to `out` and/or publish it retained. Boxes take only a
    release newer than the model they run, unless `rollback` (signed in) says an operator is going back."""
    document = build_release(model_dir, chain, load_private_key(signing_key), rollback=rollback)
    payload = json.dumps(document).encode()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(payload)
    if broker is not None:
        publish_retained(broker, model_topic(chain), payload)
    return {"version": document["version"], "chain": chain, "sha256": document["sha256"], "bytes": len(payload),
            "topic": model_topic(chain) if broker else None, "file": str(out) if out else None}
