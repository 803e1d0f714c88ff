"""Request-reply through any worker of a cluster (real worker processes on a real NATS server).

A function's reply reaches only the worker that ran it, the one serving the address. A
request-reply request that another worker received is asked of that one, which ingests it
as its own and sends back the answer; while the address has no live owner (its worker was
killed and the partition is not yet taken over), the receiving worker asks again until the
next owner answers, within the reply timeout.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from support.cluster_counter import asked, counter_module, settled, start_worker
from support.nats import cluster_name


def test_a_request_reply_request_is_answered_through_either_worker(
    tmp_path: Path, nats_url: str
) -> None:
    """Every address asked once through each of two workers: one of the two asks is always
    through the worker that does not serve it; both are answered, in order, each once."""
    module, name = counter_module(tmp_path), cluster_name("ask")
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = start_worker(module, tmp_path / "two", nats_url, name, "two")
    ids = [f"a{n}" for n in range(24)]
    try:
        settled(nats_url, name, {"one", "two"})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            firsts = list(pool.map(lambda i: asked(one, i), ids))
            seconds = list(pool.map(lambda i: asked(two, i, key=f"k-{i}"), ids))
            again = list(pool.map(lambda i: asked(one, i, key=f"k-{i}"), ids))
    finally:
        one.terminate()
        two.terminate()
    assert firsts == [(200, f"{i}:1") for i in ids]
    assert seconds == [(200, f"{i}:2") for i in ids]
    # The same key through the other worker: a duplicate, answered as such, not run again.
    assert again == [(202, "") for _ in ids]


def test_a_request_for_a_killed_workers_address_is_answered_by_its_next_owner(
    tmp_path: Path, nats_url: str
) -> None:
    module, name = counter_module(tmp_path), cluster_name("askdead")
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = start_worker(module, tmp_path / "two", nats_url, name, "two")
    ids = [f"b{n}" for n in range(16)]
    try:
        settled(nats_url, name, {"one", "two"})
        assert [asked(two, i) for i in ids] == [(200, f"{i}:1") for i in ids]
        two.kill()  # half of the addresses have no live owner until one takes them over
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: asked(one, i), ids))
        settled(nats_url, name, {"one"})
    finally:
        one.terminate()
        two.kill()
    assert answers == [(200, f"{i}:2") for i in ids]
