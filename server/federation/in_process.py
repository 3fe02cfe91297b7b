"""A Flower Grid that delivers messages by calling the ClientApp in this process.

Backtests (`--mode federated`) and fast tests run the very same ServerApp
logic (`run_federation`) and the very same ClientApp (with its mods) as a
deployment, without starting a SuperLink and SuperNodes. Stores can be marked
offline or failing to exercise partial participation.

The server package must not import the store box's package, so the ClientApp
is handed in by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from models.flower_protocol import Node

ClientCallable = Callable[[Message, Context], Message]


FIRST_NODE_ID = 101  # Flower reserves 1 for the SuperLink itself


class InProcessGrid(Grid):
    """One node per store database; node ids from 101."""

    def __init__(self, client_app: ClientCallable, store_dbs: list[Path], node_config: dict[str, Any] | None = None):
        # This process plays the ServerApp's part, so it takes the identity Flower gives one.
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
        self.client_app = client_app
        self.contexts = {
            node: Context(run_id=1, node_id=node, node_config={Node.STORE_DB: str(db), **(node_config or {})},
                          state=RecordDict(), run_config={})
            for node, db in enumerate(store_dbs, start=FIRST_NODE_ID)
        }
        self.offline: set[int] = set()  # connected but never answers (or gone)
        self.failing: dict[int, set[str]] = {}  # node -> message types it answers with an error
        self._run: Any = None
        self._replies: dict[str, Message] = {}  # message id -> its reply, until pulled

    def fail(self, node: int, *message_types: str) -> None:
        """Make `node` answer these message types (default: training) with an error."""
        self.failing.setdefault(node, set()).update(message_types or ("train",))

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def create_message(self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
                       ttl: float | None = None) -> Message:
        return Message(content=content, message_type=message_type, dst_node_id=dst_node_id, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return [node for node in self.contexts if node not in self.offline]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver each message now; its reply waits to be pulled (an offline node's never comes)."""
        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = message.object_id  # as Flower's grids do
            ids.append(message.metadata.message_id)
            node = message.metadata.dst_node_id
            if node in self.offline:
                continue  # like a box that went dark: no reply before the timeout
            if message.metadata.message_type in self.failing.get(node, ()):
                self._replies[message.metadata.message_id] = Message(
                    Error(code=1, reason="simulated store failure"), reply_to=message)
                continue
            self._replies[message.metadata.message_id] = self.client_app(message, self.contexts[node])
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in list(message_ids) if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.pull_messages(list(self.push_messages(messages)))
