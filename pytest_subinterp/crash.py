"""Reading a battery's breadcrumbs: where was the child when it crashed or hung?

The C helper writes one line per step to ``progress.log`` (see csrc/diagnostics.c, section
"breadcrumbs"); the crash handler adds the signal, the native stack and, before 3.13, the
crashing thread's Python stack; the hang dump adds the Python stack of every thread of every
interpreter it could attach to.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

_PHASE = re.compile(r"^phase (\S+) interp=(-?\d+) thread=(-?\d+) round=(-?\d+)$")
_DONE_CALL = re.compile(r"^done call interp=(-?\d+) thread=(-?\d+) round=(-?\d+) status=(\d+)$")
_DONE_END = re.compile(r"^done end interp=(-?\d+) ended=(\d)$")
_CRASH = re.compile(r"^crash (\S+) interp=(-?\d+) thread=(-?\d+) round=(-?\d+) phase=(\S+)$")

_BREADCRUMB_PREFIXES = ("phase ", "done ", "crash ", "stack ", "hang ", "failed ", "single-phase ", "battery ")

# Breadcrumb phase -> the phase named to the user and the pytest report it belongs to.
USER_PHASE = {
    "create": ("create", "setup"),
    "attach": ("create", "setup"),  # attaching to a template interpreter stands for creating one
    "import": ("import", "setup"),
    "collect": ("import", "setup"),
    "setup": ("setup", "setup"),
    "call-wait": ("call", "call"),
    "call": ("call", "call"),
    "idle": ("call", "call"),
    "python": ("call", "call"),
    "teardown": ("teardown", "teardown"),
    "finish": ("teardown", "teardown"),
    "end": ("end", "teardown"),
}


@dataclass
class Where:
    """A step of the battery: interpreter, thread and round (-1: not a battery thread)."""

    phase: str
    interp: int
    thread: int
    round: int

    @property
    def user_phase(self) -> str:
        """The phase name shown to users (create, import, setup, call, teardown, end)."""
        return USER_PHASE.get(self.phase, ("call", "call"))[0]

    @property
    def when(self) -> str:
        """The pytest phase (setup, call, teardown) whose report gets the failure."""
        return USER_PHASE.get(self.phase, ("call", "call"))[1]


@dataclass
class Progress:
    """What the breadcrumbs say."""

    in_flight: list[Where] = field(default_factory=list)
    crash_signal: str | None = None
    crash_where: Where | None = None
    native_stack: list[str] = field(default_factory=list)
    python_stack: list[str] = field(default_factory=list)
    hang_stacks: list[str] = field(default_factory=list)
    hung: bool = False
    failed_calls: int = 0
    done_calls: int = 0
    battery: str | None = None  # the child's latest battery: "test", "control", "lifetime-test", ...

    @property
    def culprit(self) -> Where | None:
        """The step most likely responsible: the crashing thread, else the latest open step."""
        if self.crash_where is not None:
            return self.crash_where
        return _latest_call(self.in_flight)


def _latest_call(steps: list[Where]) -> Where | None:
    """The latest battery call among open steps, else the latest open step."""
    calls = [w for w in steps if w.phase == "call"]
    if calls:
        return calls[-1]
    return steps[-1] if steps else None


def parse_progress(text: str) -> Progress:
    """Parse progress.log."""
    progress = Progress()
    open_steps: dict[tuple[int, int], Where] = {}
    section: list[str] | None = None
    for line in text.splitlines():
        if section is not None:
            if line in ("native-stack-end", "python-stack-end"):
                section = None
                continue
            if not line.startswith(_BREADCRUMB_PREFIXES):
                section.append(line)
                continue
            # another thread's breadcrumb written while the handler dumped: parse it below
        if line == "native-stack-begin":
            section = progress.native_stack
        elif line == "python-stack-begin":
            section = progress.python_stack
        elif line.startswith("stack "):
            progress.hang_stacks.append(line[len("stack "):])
        elif line.startswith("hang "):
            progress.hung = True
        elif line.startswith("battery "):
            progress.battery = line[len("battery "):].split(" (", 1)[0]  # "test (templates)" -> "test"
        elif m := _PHASE.match(line):
            where = Where(m[1], int(m[2]), int(m[3]), int(m[4]))
            open_steps.pop((where.interp, where.thread), None)
            if where.phase not in ("idle",):
                open_steps[(where.interp, where.thread)] = where
        elif m := _DONE_CALL.match(line):
            open_steps.pop((int(m[1]), int(m[2])), None)
            progress.done_calls += 1
            progress.failed_calls += m[4] != "0"
        elif m := _DONE_END.match(line):
            open_steps.pop((int(m[1]), -1), None)
        elif m := _CRASH.match(line):
            progress.crash_signal = m[1]
            where = Where(m[5], int(m[2]), int(m[3]), int(m[4]))
            if where.interp >= 0 or where.thread >= 0:
                progress.crash_where = where
            else:
                # Not a battery thread (a signal sent to the process): blame what was running.
                progress.crash_where = _latest_call(list(open_steps.values()))
    progress.in_flight = list(open_steps.values())
    return progress


def signal_name(signum: int) -> str:
    """SIGSEGV for 11, etc."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
