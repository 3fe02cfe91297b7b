"""The demo's store boxes: one `edge-agent run` per store, configured as a real box would be.

Each box gets the x86 mini-PC profile, its own broker account over TLS, its
SuperNode key, the release public key, its door clip as the camera, and the
store's history in its drop folder, exactly the files docs/install-store-box.md
has an operator put in place. Scoring runs every minute instead of once a day
so that a released model turns into alerts while the demo watches.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.daemon.health import read_health
from server.processes import free_port

from .central import FLOWER_ENV, Central
from .chain import CHAIN, StoreFiles, counting_line
from .processes import VENV_BIN, ProcessGroup, run_command

PROFILE = "x86-minipc"  # a profile shipped with the agent


@dataclass
class StoreBox:
    store_id: str
    folder: Path
    files: StoreFiles

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def db(self) -> Path:
        return self.data / "store.db"

    @property
    def config(self) -> Path:
        return self.folder / "edge-agent.toml"

    def write_config(self, central: Central, threads: int) -> Path:
        password = central.password_file(f"store-{self.store_id}")
        pki = central.pki
        mqtt_auth = (f'ca_file = "{pki / "ca.crt"}"\ncert_file = "{pki / f"store-{self.store_id}.crt"}"\n'
                     f'key_file = "{pki / f"store-{self.store_id}.key"}"\npassword_file = "{password}"\n'
                     if password else "")
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(f"""# {self.store_id}: a store box of the demo chain (see docs/install-store-box.md)
profile = "{PROFILE}"

[store]
chain = "{CHAIN}"
store_id = "{self.store_id}"
data_dir = "{self.data}"

[ingest]
poll_seconds = 1
settle_seconds = 1

[scoring]
every_minutes = 1

[alerts]
cooldown_days = 14
daily_cap = 400

[alerts.control_share]
orange = 0.1
red = 0.1
purple = 0.1

[mqtt]
url = "{central.store_url(CHAIN, self.store_id)}"
{mqtt_auth}drain_every_seconds = 1
status_every_seconds = 5
metrics_every_seconds = 10
resend_after_seconds = 30

[models]
public_key = "{central.signing_key}.pub"

[federation]
enabled = true
superlink = "{central.fleet_address}"
root_certificates = "{central.pki / "ca.crt"}"
auth_private_key = "{central.pki / f"supernode-{self.store_id}"}"
port = {free_port()}

[training]
threads = {threads}

[[cameras]]
name = "door"
source = "{self.files.clip}"
line = {counting_line()}
fps_budget = 25

[daemon]
http_port = 0
log_file = "{self.data / "run" / "edge-agent.log"}"
""")
        return self.config

    def prepare(self, logs: Path) -> None:
        """What an installer does before starting the service: check the config, load history and footfall."""
        edge = str(VENV_BIN / "edge-agent")
        run_command([edge, "check-config", str(self.config)], logs / f"{self.store_id}-setup.log")
        run_command([edge, "ingest-footfall", "--db", str(self.db), "--chain", CHAIN, "--store-id", self.store_id,
                     "--json", str(self.files.footfall)], logs / f"{self.store_id}-setup.log")
        dropbox = self.data / "dropbox"
        dropbox.mkdir(parents=True, exist_ok=True)
        (dropbox / "history.csv").write_bytes(self.files.pos.read_bytes())

    def start(self, group: ProcessGroup) -> None:
        group.start(f"edge-agent-{self.store_id}", [str(VENV_BIN / "edge-agent"), "run", "--config", str(self.config)],
                    env=FLOWER_ENV)

    # --- what the box says about itself ---------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return read_health(self.data / "run")

    def counts(self) -> dict[str, int]:
        """Alerts recorded on the box, outbox messages still waiting for the aggregator's ack, and the
        people the camera counted (every footfall source but the imported counter export)."""
        with sqlite3.connect(f"{self.db.resolve().as_uri()}?mode=ro", uri=True, timeout=10) as conn:
            alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
            waiting = conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0]
            entries, exits = conn.execute("SELECT coalesce(sum(entries), 0), coalesce(sum(exits), 0) FROM footfall"
                                          " WHERE source != 'counter'").fetchone()
        return {"alerts": int(alerts), "unacked": int(waiting), "entries": int(entries), "exits": int(exits)}
