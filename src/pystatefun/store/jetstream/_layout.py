"""Where a cluster keeps what: stream names, subjects, and which partition owns an address.

A cluster named N has a directory stream ``PSF_N`` with one record (``psf.N.dir``): its key
groups, partitions, instance id, and the generation of its data stream ``PSF_N_G<gen>``. A bulk
load (a savepoint restore, a bootstrap) fills a new generation and then moves the directory to
it in one write, so a load is all or nothing however large it is. Subjects of a generation
start with ``psf.N.g<gen>`` (workers' heartbeats go to ``psf.N.hb``, unstored); the kinds of
record are

=========================  =====================================================
``st.<p>.<hash>``          a state value (the latest one per subject is kept)
``in.<p>.<id>``            a message in a mailbox of partition ``p``
``tm.<p>.<id>``            a delayed message, kept by its sender's partition
``dl.<p>.<id>``            a dead letter
``eg.<p>.<id>``            an egress record
``dd.<p>.<hash>``          an idempotency key and when it expires
``po.<p>.<hash>``          where an ingress has read up to in one of its partitions
``pm.<p>``                 partition ``p``'s progress marker: who owns it, the last batch
``ob.<p>.<id>``            a message to a partition of another stream, until relayed
``rx.<p>.<q>``             up to which outbox sequence of partition ``q`` has been relayed
                           into partition ``p``'s mailboxes (the receiver's dedup mark)
``rl.<p>.<q>``             up to which of ``p``'s outbox records to partition ``q`` are
                           relayed and gone (so that a reader can tell a cut is whole)
=========================  =====================================================

A generation's partitions are spread over its streams (``--streams``, fixed when the cluster is
made): partition ``p`` lives in stream ``p mod streams``, each with its own RAFT group and
leader. Stream 0 is ``PSF_N_G<gen>``, stream ``s`` > 0 ``PSF_N_G<gen>_S<s>``. A record's id in
a worker's view is global: its stream sequence times the number of streams, plus the stream.

A record that is gone (consumed, fired, deleted) is overwritten by a tombstone that rolls its
subject up, so the stream keeps only what is live. Partitions are contiguous ranges of key
groups; every step belongs to one, whose marker fences it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import final

from pystatefun.store.keygroups import key_group_of

__all__ = ["KINDS", "OWN_KINDS", "SHARED_KINDS", "ClusterLayout", "check_cluster_name", "digest"]

#: The record kinds, as the second token of a subject after the generation prefix.
KINDS = ("st", "in", "tm", "dl", "eg", "dd", "po")
#: The kinds every worker reads for every partition: who owns what (markers), what any worker
#: may take (egress records, dead letters), ingress positions (a Kinesis child shard waits on
#: its parent's, which may be any partition's) and relay receipts (a sender waits until its
#: receiver's mark covers what it sent). Few and small, against the state and mailboxes.
SHARED_KINDS = ("pm", "eg", "dl", "po", "rx")
#: The kinds only a partition's owner reads: its state, mailboxes, timers, idempotency keys
#: and outbox.
OWN_KINDS = ("st", "in", "tm", "dd", "ob", "rl")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_cluster_name(name: str) -> str:
    """``name`` if it can name streams and subjects (letters, digits, ``-``, ``_``)."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"cluster name {name!r} may hold only letters, digits, '-' and '_' (1 to 64)"
        )
    return name


def digest(*parts: str) -> str:
    """A subject token for a key of any text (an address and a state name, an idempotency
    key): subjects cannot hold dots, spaces or wildcards, and should stay short."""
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:32]


@final
@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """One generation of a cluster's data: its stream, its subjects, its partitions."""

    name: str
    key_groups: int
    partitions: int
    generation: int
    streams: int = 1

    @staticmethod
    def directory_stream(name: str) -> str:
        return f"PSF_{name}"

    @staticmethod
    def directory_subject(name: str) -> str:
        return f"psf.{name}.dir"

    @staticmethod
    def heartbeat_subject(name: str) -> str:
        """Where workers say they are alive (core NATS, not stored: only the present counts)."""
        return f"psf.{name}.hb"

    @property
    def stream(self) -> str:
        """The first stream (the only one unless the cluster was made with more)."""
        return self.stream_name(0)

    def stream_name(self, stream: int) -> str:
        base = f"PSF_{self.name}_G{self.generation}"
        return base if stream == 0 else f"{base}_S{stream}"

    @property
    def stream_names(self) -> list[str]:
        return [self.stream_name(s) for s in range(self.streams)]

    def stream_of(self, partition: int) -> int:
        """The stream that holds ``partition``'s records."""
        return partition % self.streams

    def stream_subjects(self, stream: int) -> list[str]:
        """The subjects stream ``stream`` holds: its partitions' records and markers."""
        if self.streams == 1:
            return [f"{self.prefix}.>"]
        mine = [p for p in range(self.partitions) if p % self.streams == stream]
        return [*(f"{self.prefix}.*.{p}.>" for p in mine), *(self.marker(p) for p in mine)]

    def shared_filters(self) -> list[str]:
        """The subjects of the records every worker reads, of every partition."""
        return [f"{self.prefix}.{kind}.>" for kind in SHARED_KINDS]

    def partition_filters(self, partition: int) -> list[str]:
        """The subjects of ``partition``'s records that only its owner reads."""
        return [f"{self.prefix}.{kind}.{partition}.>" for kind in OWN_KINDS]

    def global_id(self, stream: int, seq: int) -> int:
        """The id in a view of the record stored at ``seq`` of ``stream``."""
        return seq * self.streams + stream

    def locate(self, global_id: int) -> tuple[int, int]:
        """The stream and sequence of a record's global id."""
        seq, stream = divmod(global_id, self.streams)
        return stream, seq

    @property
    def prefix(self) -> str:
        return f"psf.{self.name}.g{self.generation}"

    def subject(self, kind: str, partition: int, token: str) -> str:
        return f"{self.prefix}.{kind}.{partition}.{token}"

    def marker(self, partition: int) -> str:
        return f"{self.marker_prefix}{partition}"

    @property
    def marker_prefix(self) -> str:
        return f"{self.prefix}.pm."

    def partition_of(self, address_id: str) -> int:
        """The partition of an address id: its key group's range."""
        return key_group_of(address_id, self.key_groups) * self.partitions // self.key_groups

    def partition_of_key(self, *parts: str) -> int:
        """The partition of a record keyed by text other than an address (an idempotency
        key, an ingress partition): spread like address ids."""
        return self.partition_of("\x00".join(parts))

    def parse(self, subject: str) -> tuple[str, int]:
        """The kind and partition of a subject of this generation."""
        tokens = subject[len(self.prefix) + 1 :].split(".")
        return tokens[0], int(tokens[1])
