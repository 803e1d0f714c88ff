"""``read_live`` (a whole-stream read: savepoints, ``cluster status``) when a pull gets no
answer: it asks the consumer what is left and pulls again, rather than failing the read.
The JetStream side is a stand-in that drops the first pull, the one case a real server was
seen to produce (once, in CI under load) and that cannot be made to happen on purpose."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError

from pystatefun.store.jetstream._connection import read_live


def _message(seq: int, pending: int) -> Any:
    meta = SimpleNamespace(sequence=SimpleNamespace(stream=seq), num_pending=pending)
    return SimpleNamespace(subject=f"psf.c.g1.st.0.s{seq}", data=b"", headers=None, metadata=meta)


class _Subscription:
    def __init__(self) -> None:
        self.pulls = 0
        self.unsubscribed = False

    async def consumer_info(self) -> Any:
        return SimpleNamespace(num_pending=2, name="reader")

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        self.pulls += 1
        if self.pulls == 1:
            raise NatsTimeoutError
        return [_message(1, 1), _message(2, 0)]

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


class _JetStream:
    def __init__(self) -> None:
        self.subscription = _Subscription()
        self.deleted: list[str] = []

    async def pull_subscribe(self, subject: str, **_: object) -> _Subscription:
        return self.subscription

    async def delete_consumer(self, stream: str, name: str) -> None:
        self.deleted.append(name)


async def test_a_pull_without_an_answer_is_pulled_again() -> None:
    js = _JetStream()
    found = await read_live(js, "S", "psf.c.g1.>")  # type: ignore[arg-type] # the stand-in
    assert [record.seq for record in found] == [1, 2]
    assert js.subscription.pulls == 2
    assert js.subscription.unsubscribed
    assert js.deleted == ["reader"]
