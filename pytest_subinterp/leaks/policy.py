"""The controller's leak policy: which batteries run again, and how, before a leak is reported.

One ``LeakPolicy`` per outer session (session.py's BatteryController) owns the re-runs:

* the control of template batteries, measured once per shape and cached (the strategy in
  templates/start.py measures it; every child starts from the zygote's same memory);
* a template battery that retained more than its control runs again with the templates
  unfrozen, and the other tests of its module go unfrozen at once;
* a per-call finding must show again in a second battery (a new child, a new hash seed).

The child's side of the sequence is sequence.py; the findings are verdict.py's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_subinterp.analysis import BatteryOutcome, inner_output
from pytest_subinterp.leaks.verdict import per_call_leaked

if TYPE_CHECKING:
    from pytest_subinterp.protocol import TemplateControl

# A shape of template batteries: config, interpreters, threads, rounds, and whether unfrozen.
Shape = tuple[str, int, int, int, bool]


def per_call_leaks(outcome: BatteryOutcome) -> dict[str, dict[str, Any]]:
    """nodeid -> per-call data (interpreter 1's) of each test whose per-call detector fired."""
    found = {}
    for slot in outcome.slots():
        for nodeid, data in (inner_output(slot).get("leak_data") or {}).items():
            if per_call_leaked(data):
                found[nodeid] = data
    return found


def keep_reproduced(outcome: BatteryOutcome, first: dict[str, dict[str, Any]],
                    again: dict[str, dict[str, Any]]) -> None:
    """Keep a per-call finding of the battery only where the second battery reproduced it (its
    figures are added to the message); otherwise set it aside in the data, unreported."""
    for slot in outcome.slots():
        inner = inner_output(slot)
        tests = inner.get("leak_data") or {}
        touched = [nodeid for nodeid in tests if nodeid in first and tests[nodeid].get("growth")]
        for nodeid in touched:
            data = tests[nodeid]
            if nodeid in again:
                data["growth"]["rerun"] = again[nodeid]["growth"]
            else:
                data["growth_not_reproduced"] = data.pop("growth")
        if touched:
            slot["entry_output"] = json.dumps(inner)


class LeakPolicy:
    """Re-runs and cached controls of one outer session's batteries."""

    def __init__(self) -> None:
        # Control measurements of template batteries, per shape (see cached_control).
        self.template_controls: dict[Shape, TemplateControl | None] = {}
        # Test modules whose template batteries retain memory through frozen objects (below).
        self.unfreeze_modules: set[str] = set()

    def cached_control(self, shape: Shape,
                       measure: Callable[[], TemplateControl | None]) -> TemplateControl | None:
        """What the trivial control test retains in template interpreters of this shape (frozen
        or unfrozen before they end), measured by `measure` the first time.  Every child starts
        from the zygote's same memory, so it is measured once per shape; None when it cannot be
        (no templates, or the control itself failed)."""
        if shape not in self.template_controls:
            self.template_controls[shape] = measure()
        return self.template_controls[shape]

    def run(self, module: str, run_once: Callable[[bool], BatteryOutcome]) -> BatteryOutcome:
        """The battery of tests of `module`, run by `run_once(unfreeze)` as often as the policy
        needs; returns the outcome to report."""
        outcome = run_once(module in self.unfreeze_modules)
        if outcome.result is not None and outcome.result.get("leak_measurement", {}).get("needs_unfrozen"):
            # The template battery retained more than its control, possibly only through what
            # the test hung on frozen objects: run it again with the templates unfrozen before
            # they end, where retained memory means what it means in a fresh interpreter.  The
            # module's other tests most likely do the same: they go unfrozen at once.
            self.unfreeze_modules.add(module)
            outcome = run_once(True)
        first = per_call_leaks(outcome) if not outcome.died else {}
        if first:
            # A per-call leak must show again in a second battery (a new child, a new hash seed):
            # a leak in code called over and over does; what grew once in one battery (seen
            # once on a real suite, docs/real-projects.md) does not.
            again = run_once(module in self.unfreeze_modules)
            keep_reproduced(outcome, first, per_call_leaks(again))
        return outcome
