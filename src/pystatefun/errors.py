"""The exceptions pystatefun raises, and what a caller should do about each.

::

    PystatefunError                      base of everything below; has .code
    ├── ConfigurationError (ValueError)  a definition is wrong (type name, ValueSpec, binding):
    │   │                                fix the code; retrying cannot help
    │   └── ModuleError                  a module YAML file is missing, malformed or invalid;
    │                                    .problems says where each is: fix the file
    ├── UnknownFunctionError (KeyError)  a request names a function type that is not bound:
    │                                    bind it, or fix the endpoint's `functions` pattern
    ├── StateTypeMismatchError (TypeError)
    │                                    stored state has another type than its ValueSpec says:
    │                                    keep the type, or migrate the state under a new name
    ├── MessageTypeError (TypeError)     a message was read as a type it does not have:
    │                                    check ``message.is_type(t)`` before ``as_type(t)``
    ├── ProtocolError (ValueError)       bytes on the wire are not a valid StateFun message:
    │                                    the peer speaks another protocol or version
    ├── DataDirError                     the runtime cannot use its data dir or a port (in use
    │   │                                by another process, made with other key groups)
    │   ├── DataDirDamagedError          the data dir's files are damaged (truncated, overwritten):
    │   │                                restore the last savepoint into a new data dir
    │   ├── WriteOutcomeUnknownError     a write's fsync failed: it may or may not be on disk;
    │   │                                the runtime stops, and a restart reads what is there
    │   └── ClusterStorageError          cluster mode cannot use its NATS JetStream cluster
    │                                    (unreachable, partitions taken over): see the message
    ├── LocalClusterError                ``pystatefun cluster up``/``down`` cannot start or stop
    │                                    the local NATS cluster: see the message (and the log)
    ├── NoSuchDeadLetterError (LookupError)
    │                                    a dead letter id that does not exist: list them first
    ├── InvocationError                  a batch failed (never raised to users: the runtime
    │   │                                logs it and acts on it)
    │   ├── RetryableError               the endpoint failed (down, slow, 5xx, garbage): the
    │   │   │                            address is retried with backoff, then dead-lettered
    │   │   └── FunctionError            the function raised (HTTP 500): a few quick retries,
    │   │                                then the batch is split to find the message it cannot
    │   │                                take, which alone is dead-lettered
    │   └── TerminalError                the reply or the module contradicts stored data: the
    │                                    batch is dead-lettered at once; fix, then re-drive
    └── StoppingError                    the runtime is shutting down: retry after the restart

Errors subclass the builtin that the official ``statefun`` SDK raises in the same situation
(``docs/sdk.md`` lists the few exceptions), so code ported from it mostly keeps catching what it
caught. Every error has a stable ``code``; its page is
``docs/errors/<code>.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar, Self, final

__all__ = [
    "ClusterStorageError",
    "ConfigurationError",
    "DataDirDamagedError",
    "DataDirError",
    "FunctionError",
    "InvocationError",
    "LocalClusterError",
    "MessageTypeError",
    "ModuleError",
    "ModuleProblem",
    "NoSuchDeadLetterError",
    "ProtocolError",
    "PystatefunError",
    "RetryableError",
    "StateTypeMismatchError",
    "StoppingError",
    "TerminalError",
    "UnknownFunctionError",
    "WriteOutcomeUnknownError",
]


class PystatefunError(Exception):
    """Base class of every pystatefun error."""

    code: ClassVar[str] = "PSF-0000"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class ConfigurationError(PystatefunError, ValueError):
    """A definition is invalid: a type name, a ValueSpec, a function binding."""

    code = "PSF-SDK0001"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleProblem:
    """One thing wrong in a module file, and where: ``file`` as it was given, ``line`` and
    ``column`` 1-based, ``field`` the dotted path of the YAML field (``spec.transport.call``);
    each is ``None`` when it does not apply."""

    reason: str
    file: Path | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        """``file:line: field: reason``, like a compiler's message, so editors can jump to it."""
        where = "" if self.file is None else f"{self.file}:"
        if self.file is not None and self.line is not None:
            column = "" if self.column is None else f"{self.column}:"
            where = f"{self.file}:{self.line}:{column}"
        prefix = " ".join(part for part in (where, f"{self.field}:" if self.field else "") if part)
        return f"{prefix} {self.reason}" if prefix else self.reason


class ModuleError(ConfigurationError):
    """A module YAML file cannot be loaded: it is missing, it is not YAML, or components in it
    are invalid.

    ``problems`` lists everything found wrong, by line, so that one run shows every fix to make.
    ``reason``, ``file``, ``line``, ``column`` and ``field`` are those of the first problem (see
    ``ModuleProblem``). The message starts with ``file:line: field:`` like a compiler's; with
    several problems it is a count, then one such line per problem.
    """

    code = "PSF-MOD0001"

    def __init__(
        self,
        reason: str,
        *,
        file: Path | None = None,
        line: int | None = None,
        field: str | None = None,
        column: int | None = None,
        more: Sequence[ModuleProblem] = (),
    ) -> None:
        first = ModuleProblem(reason=reason, file=file, line=line, column=column, field=field)
        self.problems: tuple[ModuleProblem, ...] = (first, *more)
        super().__init__("\n".join(map(str, self.problems)))
        self.reason = reason
        self.file = file
        self.line = line
        self.column = column
        self.field = field

    @classmethod
    def of(cls, problems: Sequence[ModuleProblem]) -> Self:
        """One error for ``problems`` (at least one), in the order given."""
        if not problems:
            raise ValueError("a ModuleError needs at least one problem")
        first = problems[0]
        return cls(
            first.reason,
            file=first.file,
            line=first.line,
            field=first.field,
            column=first.column,
            more=problems[1:],
        )

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return super().__str__()
        files = {problem.file for problem in self.problems}
        count = f"{len(self.problems)} problems"
        header = f"{self.file}: {count}" if len(files) == 1 and self.file is not None else count
        return f"{header} [{self.code}]\n{self.message}"

    def __repr__(self) -> str:
        column = "" if self.column is None else f", column={self.column!r}"
        more = f", more={self.problems[1:]!r}" if len(self.problems) > 1 else ""
        return (
            f"ModuleError(reason={self.reason!r}, file={self.file!r}, line={self.line!r}, "
            f"field={self.field!r}{column}{more})"
        )

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # Keep the problems across pickling (multiprocessing, a worker's error report).
        rebuild = partial(
            type(self),
            file=self.file,
            line=self.line,
            field=self.field,
            column=self.column,
            more=self.problems[1:],
        )
        return rebuild, (self.reason,)


class UnknownFunctionError(PystatefunError, KeyError):
    """A request targets a function type that nothing is bound to."""

    code = "PSF-SDK0002"

    def __init__(self, typename: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) or "(none)"
        super().__init__(
            f"no function is bound to type {typename!r}; bound types: {listed}. "
            "Bind it with @functions.bind(...) or route only bound types to this endpoint."
        )
        self.typename = typename
        self.known = sorted(known)


class StateTypeMismatchError(PystatefunError, TypeError):
    """A stored state value has a different type name than its ValueSpec declares."""

    code = "PSF-SDK0003"

    def __init__(self, address: str, state: str, stored: str, declared: str) -> None:
        super().__init__(
            f"state {state!r} of {address} holds a value of type {stored!r}, but its ValueSpec "
            f"declares {declared!r}. Keep the declared type, or store the new type under a new "
            "state name and migrate."
        )
        self.address = address
        self.state = state
        self.stored = stored
        self.declared = declared


class MessageTypeError(PystatefunError, TypeError):
    """A message was decoded as a type other than the one it carries."""

    code = "PSF-SDK0004"


class ProtocolError(PystatefunError, ValueError):
    """Bytes received are not a valid StateFun request-reply message."""

    code = "PSF-SDK0005"


class DataDirError(PystatefunError):
    """The runtime cannot use its data dir or listen where the module says."""

    code = "PSF-RT0003"


class DataDirDamagedError(DataDirError):
    """The data dir's database cannot be read: truncated, overwritten, or not a database at all.

    ``path`` is the damaged file. Nothing is written to it; retrying cannot help.
    """

    code = "PSF-ST0001"

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return partial(DataDirDamagedError, path=self.path), (self.message,)


class WriteOutcomeUnknownError(DataDirError):
    """A write's ``fsync`` failed: the kernel may have kept the written pages or dropped them,
    so whether the steps it held are on disk is unknown (PostgreSQL's "fsyncgate"). They are
    not acknowledged, never written again, and the store takes no more steps: a restart reads
    what the disk holds. A client whose message was in such a write must check, or resend it
    with an ``Idempotency-Key``."""

    code = "PSF-ST0003"


class ClusterStorageError(DataDirError):
    """A worker cannot use its cluster's storage: the NATS servers are unreachable, a write
    went unacknowledged for too long, or another worker took over its partitions (whose
    steps this one can no longer commit). Restarting the worker recovers from the stream."""

    code = "PSF-CL0002"


class LocalClusterError(PystatefunError):
    """A local development cluster (``pystatefun.cluster.LocalCluster``) cannot be started or
    stopped: ``nats-server`` is not installed, a server exited or was not ready in time (what
    ``up`` started is stopped again), or the directory holds another cluster."""

    code = "PSF-CL0001"


class NoSuchDeadLetterError(PystatefunError, LookupError):
    """Dead letters were asked for by ids that do not exist (``ids``); nothing was changed."""

    code = "PSF-ST0002"

    def __init__(self, ids: list[int]) -> None:
        listed = ", ".join(str(i) for i in ids)
        super().__init__(
            f"no dead letter with id {listed}; nothing was changed. `pystatefun dead-letters "
            "list` shows the ids that exist (a re-driven or deleted dead letter is gone)."
        )
        self.ids = ids

    def __reduce__(self) -> tuple[object, tuple[list[int]]]:
        return NoSuchDeadLetterError, (self.ids,)


class InvocationError(PystatefunError):
    """A batch failed; the message says what happened, to which address, and what to check."""

    code = "PSF-RT0000"


class RetryableError(InvocationError):
    """Might succeed later: the endpoint or the network failed."""

    code = "PSF-RT0001"


class FunctionError(RetryableError):
    """The function itself failed on a batch: it raised (an HTTP 500 from its server, or an
    embedded function's exception), or its server refused the batch's size (HTTP 413).

    ``retry_helps`` is False when the failure says that trying the same messages again cannot
    work (an SDK error the message itself causes, a batch too large); ``message`` is the
    1-based position in the batch of the message that failed, when the SDK says it.
    """

    code = "PSF-RT0005"

    def __init__(
        self, message: str, *, retry_helps: bool = True, failed_message: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_helps = retry_helps
        self.failed_message = failed_message

    def __reduce__(self) -> tuple[object, tuple[str]]:
        rebuild = partial(
            FunctionError, retry_helps=self.retry_helps, failed_message=self.failed_message
        )
        return rebuild, (self.message,)


class TerminalError(InvocationError):
    """Cannot succeed as it is: the function's reply or the module contradicts stored data."""

    code = "PSF-RT0002"


class StoppingError(PystatefunError):
    """The runtime is shutting down and takes no new messages; retry after it restarts."""

    code = "PSF-RT0004"
