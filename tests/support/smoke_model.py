"""The smoke test's command generator and model (after upstream's ``CommandGenerator`` and
``FunctionStateTracker``): random nested command trees, and the state they must produce."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

Command = dict[str, Any]

# Upstream's distribution (increment 0.4, send 0.9, sendAfter 0.1, noop 0.2, sendEgress 0.03,
# sendAfter+cancel 0.1), with more egress so exactly-once egress is exercised often.
_WEIGHTS = {
    "increment": 0.4,
    "send": 0.9,
    "send_after": 0.1,
    "noop": 0.2,
    "send_egress": 0.1,
    "send_after_cancelled": 0.1,
}


@dataclass
class SmokeModel:
    """Generates source commands and tracks what every address's state must become."""

    instances: int
    max_depth: int = 6
    max_commands_per_depth: int = 3
    expected: dict[str, int] = field(default_factory=dict)
    egress_payloads: list[str] = field(default_factory=list)
    _tokens: int = 0

    def source(self, rng: random.Random) -> tuple[str, list[Command]]:
        """One ingress message: a random target and a random command tree, applied to the model."""
        target = str(rng.randrange(self.instances))
        return target, self._commands(rng, target, rng.randrange(self.max_depth))

    def _commands(self, rng: random.Random, at: str, depth: int) -> list[Command]:
        commands: list[Command] = []
        for _ in range(rng.randrange(self.max_commands_per_depth) if depth > 0 else 0):
            kind = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
            commands += self._command(rng, at, kind, depth)
        if not commands:
            commands = self._command(rng, at, "increment", depth)
        return commands

    def _command(self, rng: random.Random, at: str, kind: str, depth: int) -> list[Command]:
        if kind == "increment":
            self.expected[at] = self.expected.get(at, 0) + 1
            return [{"increment": {}}]
        if kind == "noop":
            return []
        if kind == "send_egress":
            payload = f"egress-{len(self.egress_payloads)}"
            self.egress_payloads.append(payload)
            return [{"send_egress": {"payload": payload}}]
        target = str(rng.randrange(self.instances))
        if kind == "send_after_cancelled":
            # Cancelled in the same invocation that scheduled it: it must never arrive, so
            # the model applies nothing of it (its tree is generated with a throwaway model).
            self._tokens += 1
            token = f"token-{self._tokens}"
            ghost = SmokeModel(self.instances, self.max_depth, self.max_commands_per_depth)
            body = {
                "target": target,
                "delay_ms": 5,
                "token": token,
                "commands": ghost._commands(rng, target, depth - 1),
            }
            return [{"send_after": body}, {"cancel_send_after": {"token": token}}]
        nested = self._commands(rng, target, depth - 1)
        if kind == "send":
            return [{"send": {"target": target, "commands": nested}}]
        return [
            {"send_after": {"target": target, "delay_ms": rng.randrange(20), "commands": nested}}
        ]
