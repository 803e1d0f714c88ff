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
=========================  =====================================================

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

__all__ = ["KINDS", "ClusterLayout", "check_cluster_name", "digest"]

#: The record kinds, as the second token of a subject after the generation prefix.
KINDS = ("st", "in", "tm", "dl", "eg", "dd", "po")
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
        return f"PSF_{self.name}_G{self.generation}"

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
