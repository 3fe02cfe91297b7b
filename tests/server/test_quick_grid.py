"""QuickGrid: replies are collected a fifth of a second after they arrive, and the wait stays bounded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.supercore.task_identity import TaskIdentity

from server.federation.quick_grid import QuickGrid


@pytest.fixture(autouse=True)
def as_the_serverapp() -> None:
    """Messages are made by a ServerApp: this process takes the identity Flower gives one."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID


class SlowStores:
    """A grid whose node n answers n seconds after its message is pushed (node 0 never answers);
    it keeps the time on a fake clock that `sleep` advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pulls: list[float] = []
        self.pushed: dict[str, Message] = {}

    def push_messages(self, messages: Iterable[Message]) -> list[str | None]:
        ids: list[str | None] = []
        for message in messages:
            if message.metadata.dst_node_id < 0:
                ids.append(None)  # Flower could not push it
                continue
            message_id = f"m{message.metadata.dst_node_id}"
            message.metadata.__dict__["_message_id"] = message_id
            self.pushed[message_id] = message
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        self.pulls.append(self.now)
        ready = [self.pushed[i] for i in message_ids
                 if 0 < self.pushed[i].metadata.dst_node_id <= self.now]
        return [Message(RecordDict({"config": ConfigRecord({"node": m.metadata.dst_node_id})}), reply_to=m)
                for m in ready]

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def grid_over(stores: SlowStores) -> QuickGrid:
    return QuickGrid(stores, clock=lambda: stores.now, sleep=stores.sleep)  # type: ignore[arg-type]


def messages(*nodes: int) -> list[Message]:
    return [Message(RecordDict({"config": ConfigRecord({"x": 1})}), message_type="train", dst_node_id=n)
            for n in nodes]


def answered(replies: Iterable[Any]) -> list[int]:
    return sorted(int(r.content["config"]["node"]) for r in replies)


def test_replies_are_collected_within_a_poll_of_the_last_one() -> None:
    stores = SlowStores()
    replies = grid_over(stores).send_and_receive(messages(1, 3), timeout=600)
    assert answered(replies) == [1, 3]
    assert 3.0 <= stores.now <= 3.2, "the last reply (at 3 s) is taken within one 0.2 s poll"
    assert all(later - earlier <= 0.2 + 1e-9 for earlier, later in zip(stores.pulls, stores.pulls[1:]))


def test_a_store_that_never_answers_costs_the_timeout_and_no_more() -> None:
    stores = SlowStores()
    replies = grid_over(stores).send_and_receive(messages(2, 0), timeout=30)
    assert answered(replies) == [2]
    assert stores.now == 30.0, "waited exactly the timeout for the silent store"


def test_a_message_that_could_not_be_pushed_is_not_waited_for() -> None:
    stores = SlowStores()
    replies = grid_over(stores).send_and_receive(messages(1, -1), timeout=30)
    assert answered(replies) == [1] and stores.now < 1.3
    assert grid_over(SlowStores()).send_and_receive([], timeout=30) == []
