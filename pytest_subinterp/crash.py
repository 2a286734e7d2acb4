"""Reading a battery's breadcrumbs: where was the child when it crashed or hung?

The C helper writes one line per step to ``progress.log`` (see csrc/diagnostics.c, section
"breadcrumbs"); the crash handler adds the signal, the native stack and, before 3.13, the
crashing thread's Python stack; the hang dump adds the Python stack of every thread of every
interpreter it could attach to.

The functions at the end describe a crash in words (where, how it ended, whether CPython itself
is to blame); the plugin's reports and ``check`` both use them.  No pytest here: ``check`` runs
without it.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

from pytest_subinterp import compat, messages, quirks

_PHASE = re.compile(r"^phase (\S+) interp=(-?\d+) thread=(-?\d+) round=(-?\d+)$")
_DONE_CALL = re.compile(r"^done call interp=(-?\d+) thread=(-?\d+) round=(-?\d+) status=(\d+)$")
_DONE_END = re.compile(r"^done end interp=(-?\d+) ended=(\d)$")
_CRASH = re.compile(r"^crash (\S+) interp=(-?\d+) thread=(-?\d+) round=(-?\d+) phase=(\S+)$")

_LOADED = re.compile(r"^(loaded|refused) interp=(-?\d+) (\S+) (.*)$")
_SINGLE_PHASE = re.compile(r"^single-phase (\S+)$")

_BREADCRUMB_PREFIXES = ("phase ", "done ", "crash ", "stack ", "hang ", "failed ", "single-phase ", "battery ",
                        "loaded ", "refused ")

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
    # Extension modules each interpreter loaded / refused (inner.py's breadcrumbs): name -> file.
    loaded: dict[int, dict[str, str]] = field(default_factory=dict)
    refused: dict[int, dict[str, str]] = field(default_factory=dict)
    single_phase: set[str] = field(default_factory=set)

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
        elif m := _LOADED.match(line):
            table = progress.loaded if m[1] == "loaded" else progress.refused
            table.setdefault(int(m[2]), {})[m[3]] = m[4]
        elif m := _SINGLE_PHASE.match(line):
            progress.single_phase.add(m[1])
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


# ---- describing a crash in words ----


def where_text(where: Where | None, config: str, interpreters: int, threads: int, rounds: int,
               battery: str | None = None) -> str:
    """Where the culprit step was, as users count (interpreter 2/2, thread 3/4, round 1/1), and
    in which of the child's batteries (CRASH_STAGE) when it was not the test's own."""
    if battery in ("lifetime-test", "lifetime-control"):
        interpreters = threads = rounds = 1  # leaks/sequence.py's series: one interpreter, one thread, one round
    if where is None or where.interp < 0:
        text = messages.CRASH_WHERE_UNKNOWN.format(config=config)
    elif where.thread < 0:
        text = messages.CRASH_WHERE_CREATOR.format(
            interp=where.interp + 1, n_interps=interpreters, config=config, phase=where.user_phase)
    else:
        text = messages.CRASH_WHERE.format(
            interp=where.interp + 1, n_interps=interpreters, config=config,
            thread=where.thread + 1, n_threads=threads, round=max(where.round, 0) + 1,
            n_rounds=rounds, phase=where.user_phase)
    stage = messages.CRASH_STAGE.get(battery or "")
    return f"{text}, {stage}" if stage else text


def how_it_ended(signum: int | None, exit_code: int | None, progress: Progress) -> str:
    """The signal (or exit code) that ended the child; both signals when the crash handler saw
    one and the process was ended by another ("SIGSEGV (ended by SIGKILL)")."""
    if signum is not None:
        how = signal_name(signum)
    elif progress.crash_signal:
        how = progress.crash_signal
    elif exit_code is not None:
        how = f"exit code {exit_code}"
    else:
        how = "an unknown status"
    if progress.crash_signal and signum is not None and progress.crash_signal != how:
        how = f"{progress.crash_signal} (ended by {how})"
    return how


def defect_note(defect: quirks.KnownDefect) -> str:
    """The sentence attributing a crash or refusal to a known defect of the running CPython."""
    return messages.KNOWN_CPYTHON_DEFECT.format(version=compat.python_version(),
                                                description=defect.description, advice=defect.advice)


# ---- evidence: what the record shows about a crash ------------------------------------------------

# Shared objects of the process itself, never the code under test.
_SYSTEM_OBJECTS = ("libpython", "libc.so", "libc-", "ld-linux", "libpthread", "libm.so", "libgcc", "libstdc++",
                   "libdl", "librt", "linux-vdso")


def native_objects(native_stack: list[str]) -> list[str]:
    """The shared objects named by the native stack ("/path/x.so(func+0x1a) [0x7f..]"), in order."""
    found: list[str] = []
    for line in native_stack:
        path = line.split("(", 1)[0].split(" [", 1)[0].strip()
        if path and path not in found:
            found.append(path)
    return found


def is_project_object(path: str) -> bool:
    """A shared object of the code under test: not CPython's (its stdlib, libpython), not the
    system's, not pytest-subinterp's own C helper."""
    import os

    name = os.path.basename(path)
    if not (path.endswith(".so") or ".so." in name) or name.startswith(_SYSTEM_OBJECTS):
        return False
    if name.startswith("_subinterp.") and "pytest_subinterp" in path:
        return False
    if path.startswith(("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/")) and "-packages" not in path:
        return False
    return not quirks.is_stdlib_path(path)


def evidence(progress: Progress) -> quirks.Evidence:
    """The facts about a crash that attribution may rely on (quirks.attribute)."""
    loaded = {name for modules in progress.loaded.values() for name in modules}
    project_loaded = {name: path for modules in progress.loaded.values() for name, path in modules.items()
                      if is_project_object(path)}
    where = progress.culprit
    return quirks.Evidence(
        phase=where.user_phase if where is not None else None,
        loaded=frozenset(loaded | progress.single_phase),
        refused=frozenset(name for modules in progress.refused.values() for name in modules),
        single_phase=frozenset(progress.single_phase),
        project_frames=tuple(path for path in native_objects(progress.native_stack) if is_project_object(path)),
        project_modules=tuple(project_loaded.items()),
    )


def attribution_note(text: str, config: str, progress: Progress) -> str | None:
    """What a crash is attributed to, with the evidence (`text`: the child's stderr and
    breadcrumbs): CPython only when the record shows a known defect's preconditions and no frame
    of the code under test; the extension the native stack (or the last load) names otherwise;
    both when the evidence is mixed.  None when the record says nothing either way."""
    found = evidence(progress)
    defect, mixed = quirks.attribute(text, config, found)
    if defect is not None and not mixed:
        return defect_note(defect)
    if defect is not None:
        return messages.MIXED_EVIDENCE.format(
            version=compat.python_version(), description=defect.description,
            frames=", ".join(found.project_frames))
    if found.project_frames:
        return messages.CRASH_IN_EXTENSION.format(frames=", ".join(found.project_frames))
    if found.project_modules:
        name, path = found.project_modules[-1]
        return messages.CRASH_AFTER_LOAD.format(module=name, path=path)
    return None


# CPython's own noise in a battery child's stderr: the dummy Thread objects of the battery's
# native threads are deleted after their interpreter's threading module was torn down (3.13:
# "Exception ignored in: <function _DeleteDummyThreadOnDel.__del__ ...>").  Nothing of the test.
_NOISE_HEADS = ("Exception ignored in: <function _DeleteDummyThreadOnDel",)


def without_cpython_noise(text: str) -> str:
    """`text` without the 'Exception ignored' reports CPython prints for its own objects."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith(_NOISE_HEADS):
            skipping = True
            continue
        if skipping:
            if line.startswith(("Traceback", " ", "\t")):
                continue
            skipping = False
            continue  # the exception line that ends the report
        kept.append(line)
    return "".join(kept)
