"""State-leak detection (PRODUCT.md section 5), split by where the code runs:

* ``measure``: inside each interpreter of a battery (per-call growth, shared objects);
* ``sequence``: in the battery child's main interpreter (warm-up, control, test, lifetime series,
  process memory);
* ``verdict``: pure functions: thresholds and findings, wherever they are needed;
* ``policy``: in the controller: cached template controls, unfrozen re-runs, second batteries.

Inner sessions import ``measure`` (and so this package) in every interpreter: only ``verdict``,
which is as light, is imported here.  A new detector measures in ``measure`` or ``sequence`` and
is judged in ``verdict``.
"""

from pytest_subinterp.leaks.verdict import Finding, per_call_findings

__all__ = ["Finding", "per_call_findings"]
