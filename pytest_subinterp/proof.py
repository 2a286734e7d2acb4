"""Proof of execution: a marked test passes only if the battery's record holds every expected call.

A battery of K interpreters, T threads and R rounds makes T x R calls of the test body: thread t
runs round j in interpreter (t + j) mod K.  The C helper records each call it made or skipped
(``calls`` of its result: interpreter, thread, round, status).  :func:`prove` compares the
record with what was expected and :class:`Proof` says, in the user's words, which calls did not
run or did not pass.  ``reports.build_reports`` refuses to give a passed call report without a
proof for every battery that is ``ok`` -- the one place where "passed" is decided, so that no
path (a conftest failing inside an interpreter, a plugin skipping the body, a lost record, a
``KeyboardInterrupt`` swallowed by an inner session) can produce a pass by default.

Pure functions on plain data: unit-tested on synthetic records (tests/unit/test_proof.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The C helper's call statuses (_subinterp.CALL_PASSED, ...), by index.
CALL_STATUS = ("passed", "failed", "not run", "error")

NO_RECORD = "no record of the battery's calls exists (the helper's result was lost)"


@dataclass(frozen=True, order=True)
class Call:
    """One expected call of the body: 0-based interpreter, thread and round."""

    interpreter: int
    thread: int
    round: int

    def describe(self, n_interps: int, n_threads: int, n_rounds: int) -> str:
        """'interpreter 2/2, thread 3/4, round 1/1', counted as users count."""
        return (f"interpreter {self.interpreter + 1}/{n_interps}, thread {self.thread + 1}/{n_threads}, "
                f"round {self.round + 1}/{n_rounds}")


def expected_calls(n_interps: int, n_threads: int, n_rounds: int) -> list[Call]:
    """Every call a battery of this shape makes: thread t, round j, in interpreter (t + j) mod K."""
    return [Call((t + j) % n_interps, t, j) for t in range(n_threads) for j in range(n_rounds)]


@dataclass
class Proof:
    """What one battery's record proves about one test in one config."""

    config: str
    n_interps: int
    n_threads: int
    n_rounds: int
    expected: int = 0
    recorded: int = 0
    passed: int = 0
    # Calls that are not passed, by what happened to them: "failed", "error", "not run", "missing".
    problems: dict[str, list[Call]] = field(default_factory=dict)
    # Why calls did not run, as far as the inner sessions said (per interpreter, 0-based).
    reasons: dict[int, str] = field(default_factory=dict)

    @property
    def unrun(self) -> bool:
        """True when some expected call did not run at all (as opposed to running and failing)."""
        return self.expected == 0 or any(kind != "failed" for kind in self.problems)

    @property
    def ok(self) -> bool:
        """True when every expected call is recorded exactly once, as passed."""
        return self.expected > 0 and self.passed == self.expected and not self.problems

    def interpreters_passed(self) -> set[int]:
        """The interpreters (0-based) that had expected calls and passed every one of them."""
        ran = {call.interpreter for call in expected_calls(self.n_interps, self.n_threads, self.n_rounds)}
        troubled = {call.interpreter for calls in self.problems.values() for call in calls}
        return ran - troubled - set(self.reasons) if self.expected else set()

    def counts(self) -> dict[str, int]:
        """For the JSON report: expected, recorded and passed calls, and each kind of problem."""
        return {"expected_calls": self.expected, "recorded_calls": self.recorded, "passed_calls": self.passed,
                **{kind.replace(" ", "_") + "_calls": len(calls) for kind, calls in self.problems.items()}}

    def explain(self) -> str:
        """Which calls did not run or did not pass, and why, for a failure message."""
        shape = f"{self.n_interps} interpreter(s) x {self.n_threads} thread(s) x {self.n_rounds} round(s)"
        lines = [f"the test body did not pass in every expected call ({self.config}, {shape}): "
                 f"{self.passed} of {self.expected} expected calls passed, {self.recorded} recorded"]
        for kind in ("missing", "not run", "error", "failed", "unexpected"):
            calls = self.problems.get(kind, [])
            if calls:
                lines.append(f"  {kind}: {_list(calls, self)}")
        for index, reason in sorted(self.reasons.items()):
            where = f"interpreter {index + 1}/{self.n_interps}" if index >= 0 else "battery"
            lines.append(f"  {where}: {reason}")
        return "\n".join(lines)


def _list(calls: list[Call], proof: Proof, limit: int = 8) -> str:
    shown = "; ".join(call.describe(proof.n_interps, proof.n_threads, proof.n_rounds) for call in calls[:limit])
    more = f"; and {len(calls) - limit} more" if len(calls) > limit else ""
    return f"{len(calls)} call(s): {shown}{more}"


def prove(config: str, n_interps: int, n_threads: int, n_rounds: int, records: Iterable[Mapping[str, Any]] | None,
          reasons: Mapping[int, str] | None = None) -> Proof:
    """Compare a battery's call records (the C helper's ``calls`` for this test) with the calls
    its shape makes.  `records` None: the record itself was lost."""
    proof = Proof(config, n_interps, n_threads, n_rounds, reasons=dict(reasons or {}))
    expected = expected_calls(n_interps, n_threads, n_rounds)
    proof.expected = len(expected)
    seen: dict[Call, str] = {}
    for record in records or ():
        call = Call(int(record["interpreter"]), int(record["thread"]), int(record["round"]))
        status = record["status"]
        seen[call] = CALL_STATUS[status] if isinstance(status, int) else str(status)
        proof.recorded += 1
    for call in expected:
        status = seen.pop(call, "missing")
        if status == "passed":
            proof.passed += 1
        else:
            proof.problems.setdefault(status, []).append(call)
    if seen:  # records of calls this shape never makes: the record is not this battery's
        proof.problems.setdefault("unexpected", []).extend(sorted(seen))
    if records is None:
        proof.reasons.setdefault(-1, NO_RECORD)
    return proof
