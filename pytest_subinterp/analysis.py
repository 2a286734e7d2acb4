"""What one battery says about one test: crashes, hangs, refusals, fallbacks, left threads, leaks.

Turns a battery's outcome (the C helper's result, the inner sessions' JSON, the breadcrumbs and
the child's exit status) into a ``reports.Collected`` for each test it ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from pytest_subinterp import advice, compat, crash, messages, proof, quirks, reports
from pytest_subinterp.child import EXIT_HUNG_GIL_HELD
from pytest_subinterp.leaks import verdict as leak_verdict
from pytest_subinterp.options import Settings
from pytest_subinterp.verdicts import Verdict
from pytest_subinterp.workermanage import ChildExit, hard_deadline_grace

if TYPE_CHECKING:
    from pytest_subinterp.protocol import HelperResult, InnerOutput, InterpreterSlot

TAIL_CHARS = 20000


@dataclass
class BatteryOutcome:
    """Everything one battery's child left behind."""

    config: str
    exit: ChildExit
    result: HelperResult | None
    progress: str
    stdout: str
    stderr: str
    child_error: str | None
    wall_s: float
    item_lines: dict[int, list[dict[str, Any]]]  # per interpreter: results of finished tests

    def slots(self) -> list[InterpreterSlot]:
        """The interpreters of the helper's result (none when the child left no result)."""
        return self.result["interpreters"] if self.result is not None else []

    @property
    def died(self) -> bool:
        """Whether the child crashed, hung or could not run (no complete result)."""
        if self.exit.infrastructure_error or self.result is None or self.result.get("hung"):
            return True
        return self.exit.signal is not None or (self.exit.exit_code or 0) != 0

    def finished_items(self, nodeids: list[str]) -> list[str]:
        """The leading tests whose results every interpreter wrote before the child died."""
        if not self.item_lines:
            return []
        done = [{line["nodeid"] for line in lines} for lines in self.item_lines.values()]
        finished = []
        for nodeid in nodeids:
            if not all(nodeid in seen for seen in done):
                break
            finished.append(nodeid)
        return finished


def inner_output(slot: Mapping[str, Any]) -> InnerOutput:
    """What inner.run returned in one interpreter of a battery result ({} if nothing readable)."""
    try:
        output: InnerOutput = json.loads(slot.get("entry_output") or "{}")
        return output
    except ValueError:
        return {}


def not_run_reasons(nodeid: str, slots: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Per interpreter (0-based), why the test's body may not have run there, from what its inner
    session said; interpreters where nothing went wrong before the body are left out."""
    reasons: dict[int, str] = {}
    for slot in slots:
        index = slot["index"]
        if slot.get("create_error"):
            reasons[index] = f"the interpreter could not be created: {_first_line(slot['create_error'])}"
            continue
        if slot.get("entry_error") or not slot.get("entry_output"):
            reasons[index] = f"the inner pytest session did not run: {_first_line(slot.get('entry_error') or '')}"
            continue
        inner = inner_output(slot)
        reason = _inner_reason(nodeid, inner)
        if reason:
            reasons[index] = reason
    return reasons


def _inner_reason(nodeid: str, inner: InnerOutput) -> str | None:
    if inner.get("error"):
        return f"the inner pytest session raised: {_last_line(inner['error'])}"
    if inner.get("collect_errors"):
        return "collection failed there (the collection error is shown above)"
    if nodeid in inner.get("not_found", ()):
        return "the test was not collected there"
    phases = {data.get("when"): data for data in inner.get("reports", ()) if data.get("nodeid") == nodeid}
    setup = phases.get("setup")
    if setup is None:
        code = inner.get("exitcode")
        text = _last_line(inner.get("session_output") or "")
        return f"the inner pytest session ended with exit code {code} before the test ran" + (f": {text}" if text
                                                                                              else "")
    if setup.get("outcome") == "skipped":
        return "the test was skipped there in setup"
    if setup.get("outcome") == "failed":
        return "setup failed there (the error is shown above)"
    return None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(no detail)")


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "(no detail)")


def _tail(text: str) -> str:
    return text if len(text) <= TAIL_CHARS else "...\n" + text[-TAIL_CHARS:]


CALL_STATUS = ("passed", "failed", "not run", "error")  # _subinterp.CALL_PASSED, ...


def battery_record(settings: Settings, outcome: BatteryOutcome, generation: int | None = None) -> dict[str, Any]:
    """One battery as the JSON report shows it (see docs/json-report.md); `generation`: the
    test's position in a module-scope battery, to keep only its calls."""
    result: Mapping[str, Any] = outcome.result or {}
    progress = crash.parse_progress(outcome.progress)
    culprit = progress.culprit if (outcome.exit.signal or outcome.exit.exit_code or not result) else None
    return {
        "config": outcome.config,
        "interpreters": settings.interpreters,
        "threads": settings.threads,
        "rounds": settings.rounds,
        "scope": settings.scope,
        # "template": the interpreters were template interpreters inherited from the zygote
        "start": "template" if outcome.exit.templates else "fresh",
        "template_error": outcome.exit.template_error,
        "wall_s": round(outcome.wall_s, 4),
        "exit": {
            "signal": crash.signal_name(outcome.exit.signal) if outcome.exit.signal else None,
            "exit_code": outcome.exit.exit_code,
            "killed_after_deadline": outcome.exit.killed_after_deadline,
            "infrastructure_error": outcome.exit.infrastructure_error,
            "max_rss_kb": outcome.exit.max_rss_kb,
            "zygote_rss_kb": outcome.exit.zygote_rss_kb,
        },
        "hung": bool(result.get("hung")) or outcome.exit.killed_after_deadline
        or (not result and outcome.exit.exit_code == EXIT_HUNG_GIL_HELD),
        "crash_phase": culprit.user_phase if culprit else None,
        "crash_where": {"interpreter": culprit.interp, "thread": culprit.thread, "round": culprit.round}
        if culprit else None,
        "per_interpreter": [
            {key: slot.get(key) for key in ("index", "created", "ended", "create_s", "run_s", "end_s",
                                            "create_error", "end_error")}
            for slot in result.get("interpreters", ())
        ],
        "calls": [
            {"interpreter": c["interpreter"], "thread": c["thread"], "round": c["round"],
             "status": CALL_STATUS[c["status"]], "seconds": round(c["seconds"], 6)}
            for c in result.get("calls", ())
            if generation is None or c["generation"] == generation
        ],
    }


class Analyser:
    """Analyses batteries for the outer session (needs its config to read serialized reports)."""

    def __init__(self, config: pytest.Config, strict: bool) -> None:
        self.config = config
        self.strict = strict

    def analyse_finished(self, item: pytest.Item, settings: Settings, outcome: BatteryOutcome,
                          collected: reports.Collected, generation: int) -> None:
        """A test that finished in every interpreter before its battery's child died later."""
        record = battery_record(settings, outcome, generation)
        collected.batteries.append(record)
        slots = []
        for index, lines in sorted(outcome.item_lines.items()):
            line = next(entry for entry in lines if entry["nodeid"] == item.nodeid)
            record["calls"] += [
                {"interpreter": c["interpreter"], "thread": c["thread"], "round": c["round"],
                 "status": CALL_STATUS[c["status"]], "seconds": round(c["seconds"], 6)}
                for c in line.get("calls", {}).get(item.nodeid, ())
            ]
            slots.append({"index": index, "create_error": None, "entry_error": None, "end_error": None,
                          "ended": True, "entry_output": json.dumps(line)})
        records = [call for lines in outcome.item_lines.values() for line in lines if line["nodeid"] == item.nodeid
                   for call in line.get("calls", {}).get(item.nodeid, ())]
        collected.proofs.append(proof.prove(outcome.config, settings.interpreters, settings.threads,
                                            settings.rounds, records, not_run_reasons(item.nodeid, slots)))
        for slot in slots:
            self._analyse_interpreter(item, settings, outcome.config, slot, collected, last=False)
        if settings.leaks != "off":
            self._add_leaks(item, settings, outcome.config, {"interpreters": slots}, collected)

    def analyse(self, item: pytest.Item, settings: Settings, outcome: BatteryOutcome,
                 collected: reports.Collected, last: bool = True, generation: int | None = None) -> None:
        collected.batteries.append(battery_record(settings, outcome, generation))
        collected.notes.append(
            ("subinterp battery", f"{settings.interpreters}x{settings.threads}x{settings.rounds} "
                                  f"{outcome.config}: {outcome.wall_s * 1000:.0f} ms")
        )
        result = outcome.result
        if outcome.exit.infrastructure_error:
            collected.synthetic.append(reports.Synthetic(
                "setup", messages.INFRASTRUCTURE.format(nodeid=item.nodeid, error=outcome.exit.infrastructure_error),
                Verdict.INFRASTRUCTURE))
            return
        crashed = result is None or outcome.exit.signal is not None or (outcome.exit.exit_code or 0) != 0
        gil_held = result is None and outcome.exit.exit_code == EXIT_HUNG_GIL_HELD
        if (result is not None and result.get("hung")) or gil_held:
            self._add_hang(item, settings, outcome, collected)
            return
        if crashed:
            self._add_crash(item, settings, outcome, collected)
            return
        assert result is not None
        if result.get("closed_std_fds"):
            collected.synthetic.append(reports.Synthetic("call", messages.CLOSED_STD_STREAMS.format(
                nodeid=item.nodeid, fds=", ".join(map(str, result["closed_std_fds"]))), Verdict.FAILED))
        records = [call for call in result.get("calls", ()) if generation is None or call["generation"] == generation]
        collected.proofs.append(proof.prove(outcome.config, settings.interpreters, settings.threads,
                                            settings.rounds, records,
                                            not_run_reasons(item.nodeid, result["interpreters"])))
        for slot in result["interpreters"]:
            self._analyse_interpreter(item, settings, outcome.config, slot, collected, last)
        if settings.leaks != "off":
            measured = result if last else {"interpreters": result["interpreters"]}
            self._add_leaks(item, settings, outcome.config, measured, collected)

    def _crash_sections(self, outcome: BatteryOutcome, progress: crash.Progress) -> list[tuple[str, str]]:
        sections = []
        if progress.python_stack:
            sections.append(("subinterp crashing thread (Python stack)", "\n".join(progress.python_stack)))
        if progress.native_stack:
            sections.append(("subinterp crashing thread (native stack)", "\n".join(progress.native_stack)))
        stderr = crash.without_cpython_noise(outcome.stderr)
        if stderr.strip():
            sections.append(("Captured stderr (worker)", _tail(stderr)))
        if outcome.child_error:
            sections.append(("subinterp worker error", outcome.child_error))
        sections.append(("subinterp breadcrumbs", _tail(outcome.progress)))
        return sections

    def _add_crash(self, item: pytest.Item, settings: Settings, outcome: BatteryOutcome,
                   collected: reports.Collected) -> None:
        progress = crash.parse_progress(outcome.progress)
        where = progress.culprit
        where_text = crash.where_text(where, outcome.config, settings.interpreters, settings.threads,
                                      settings.rounds, progress.battery)
        if outcome.exit.killed_after_deadline:
            text = messages.KILLED_AFTER_DEADLINE.format(
                nodeid=item.nodeid, grace=hard_deadline_grace(settings.interpreters), timeout=settings.timeout,
                where=where_text)
            verdict = Verdict.HUNG
            if progress.hang_stacks:
                text += "\n" + "\n".join(progress.hang_stacks)
        else:
            how = crash.how_it_ended(outcome.exit.signal, outcome.exit.exit_code, progress)
            text = messages.CRASHED.format(how=how, nodeid=item.nodeid, where=where_text)
            verdict = Verdict.CRASHED
        note = crash.attribution_note(outcome.stderr + outcome.progress, outcome.config, progress)
        if note:
            text += "\n" + note
        when = where.when if where is not None else "call"
        collected.synthetic.append(reports.Synthetic(when, text, verdict, self._crash_sections(outcome, progress)))

    def _add_hang(self, item: pytest.Item, settings: Settings, outcome: BatteryOutcome,
                  collected: reports.Collected) -> None:
        progress = crash.parse_progress(outcome.progress)
        where = progress.culprit
        text = messages.HUNG.format(nodeid=item.nodeid, timeout=settings.timeout,
                                    where=crash.where_text(where, outcome.config, settings.interpreters,
                                                           settings.threads, settings.rounds, progress.battery))
        stacks = "\n".join(progress.hang_stacks) or "(no Python stack could be read)"
        if outcome.result is None and outcome.exit.exit_code == EXIT_HUNG_GIL_HELD:
            text += "\n" + messages.HUNG_GIL_HELD
        sections = [("subinterp breadcrumbs", _tail(outcome.progress))]
        stderr = crash.without_cpython_noise(outcome.stderr)
        if stderr.strip():
            sections.append(("Captured stderr (worker)", _tail(stderr)))
        collected.synthetic.append(reports.Synthetic(where.when if where else "call", text + "\n" + stacks,
                                                     Verdict.HUNG, sections))

    def _analyse_interpreter(self, item: pytest.Item, settings: Settings, config_name: str,
                             slot: Mapping[str, Any], collected: reports.Collected, last: bool = True) -> None:
        index = slot["index"]
        label = f"{config_name} interpreter {index + 1}/{settings.interpreters}"
        if slot["create_error"]:
            collected.synthetic.append(reports.Synthetic("setup", messages.CREATE_FAILED.format(
                config=config_name, interp=index + 1, error=slot["create_error"]), Verdict.INFRASTRUCTURE))
            return
        if slot["entry_error"] or not slot["entry_output"]:
            collected.synthetic.append(reports.Synthetic("setup", messages.INNER_ERROR.format(
                config=config_name, interp=index + 1, error=slot["entry_error"]), Verdict.INFRASTRUCTURE))
            return
        inner = json.loads(slot["entry_output"])
        if inner.get("error"):
            collected.synthetic.append(reports.Synthetic("setup", messages.INNER_ERROR.format(
                config=config_name, interp=index + 1, error=inner["error"]), Verdict.INFRASTRUCTURE))
        self._add_collect_errors(item, config_name, index, inner, collected)
        self._add_session_error(item, config_name, index, inner, collected)
        entry = reports.InterpreterReports(label, {}, None)
        for data in inner["reports"]:
            report = self.config.hook.pytest_report_from_serializable(config=self.config, data=data)
            longrepr: Any = getattr(report, "longrepr", None)
            if isinstance(report, pytest.TestReport) and isinstance(longrepr, list):
                report.longrepr = (longrepr[0], longrepr[1], longrepr[2])  # a skip's (path, lineno, reason) via JSON
            if isinstance(report, pytest.TestReport) and report.nodeid == item.nodeid:
                entry.reports[report.when] = report
        where = inner.get("where", {}).get(item.nodeid)
        if where is not None:
            entry.where = {**where, "config": config_name, "interp": where["interpreter"]}
        if entry.reports:
            collected.interpreters.append(entry)
        self._add_fallbacks(item, config_name, index, inner, entry, collected)
        if last:  # threads are checked when the session, and so the last test, is over
            self._add_leftovers(config_name, index, inner, slot, collected)

    def _add_collect_errors(self, item: pytest.Item, config_name: str, index: int,
                            inner: dict[str, Any], collected: reports.Collected) -> None:
        for error in inner.get("collect_errors", ()):
            text = error["longrepr"]
            # The refusal that failed collection: an extension's, named in the error text if
            # possible (pytest itself has refusals it catches, e.g. readline).
            refused = [r for r in inner.get("refusals", ())
                       if quirks.is_subinterpreter_refusal(r["message"]) and not quirks.is_stdlib_path(r.get("path"))]
            refused.sort(key=lambda r: r["message"] not in text)
            headline = self._refusal_headline(text, refused, config_name)
            if headline is not None:
                collected.synthetic.append(reports.Synthetic(
                    "setup", f"{headline}\n\n[{config_name} interpreter {index + 1}] {text}", Verdict.IMPORT_REFUSED))
            else:
                collected.synthetic.append(reports.Synthetic(
                    "setup", f"[{config_name} interpreter {index + 1}] collection failed:\n{text}", Verdict.FAILED))
        if inner.get("not_found") and not inner.get("collect_errors"):
            collected.synthetic.append(reports.Synthetic("setup", messages.NOT_COLLECTED.format(
                nodeid=item.nodeid, config=config_name, interp=index + 1), Verdict.INFRASTRUCTURE))

    def _add_session_error(self, item: pytest.Item, config_name: str, index: int, inner: dict[str, Any],
                           collected: reports.Collected) -> None:
        """An inner session that stopped before the test ran (a conftest that raised or imported a
        refused module, a usage error): reported as plain pytest reports it, prefixed with the
        interpreter; once per distinct output, naming the interpreters it came from."""
        code = inner.get("exitcode")
        if inner.get("collect_errors") or inner.get("error") or code in (None, 0, 1):
            return
        if any(data.get("nodeid") == item.nodeid for data in inner.get("reports", ())):
            return
        output = (inner.get("session_output") or "").strip() or f"(the session printed nothing; exit code {code})"
        for synthetic in collected.synthetic:
            if synthetic.when == "setup" and synthetic.text.endswith(output):
                return  # the same error in an earlier interpreter
        text = messages.SESSION_STOPPED.format(config=config_name, interp=index + 1, code=code, output=output)
        refused = [r for r in inner.get("refusals", ())
                   if quirks.is_subinterpreter_refusal(r["message"]) and not quirks.is_stdlib_path(r.get("path"))]
        headline = self._refusal_headline(output, refused, config_name)
        if headline is not None:
            importer = next((r.get("importer") for r in inner.get("refusals", ()) if r.get("importer")), None)
            if importer:
                headline += f" (imported by {importer})"
            collected.synthetic.append(reports.Synthetic("setup", f"{headline}\n\n{text}", Verdict.IMPORT_REFUSED))
        else:
            collected.synthetic.append(reports.Synthetic("setup", text, Verdict.FAILED))

    @staticmethod
    def _refusal_headline(text: str, refused: list[dict[str, Any]], config_name: str) -> str | None:
        """What a collection error that is a refused (or blocked) import means, or None."""
        version = compat.python_version()
        if refused:
            return advice.refusal_message(refused[0]["module"], config_name, refused[0]["message"],
                                          refused[0].get("path"))
        blocked = quirks.blocked_module_in(text, config_name)
        if blocked:
            return messages.STDLIB_BLOCKED.format(module=blocked, config=config_name, version=version)
        if quirks.is_subinterpreter_refusal(text):
            # Only CPython's own modules were refused (e.g. _tracemalloc on 3.13.0, _ctypes on
            # 3.12): not the project's fault.
            return messages.STDLIB_REFUSED.format(
                module=quirks.refused_module_name(text) or "a standard library module",
                config=config_name, version=version)
        return None

    def _add_fallbacks(self, item: pytest.Item, config_name: str, index: int, inner: dict[str, Any],
                       entry: reports.InterpreterReports, collected: reports.Collected) -> None:
        if inner.get("collect_errors"):
            return  # the refusal is already the reported failure
        during_item = inner.get("item_refusals", {}).get(item.nodeid, ())
        refusals = [*inner.get("collection_refusals", ()), *during_item]
        for refusal in refusals:
            failed_phase = next((when for when in ("setup", "call") if when in entry.reports
                                 and entry.reports[when].failed), None)
            # CPython's own module: never the package's fallback.  Explained only when this test
            # itself imported a stdlib extension file and failed (pytest swallows its own
            # refusals, e.g. readline, at collection).
            if quirks.is_stdlib_path(refusal.get("path")) and not (
                    failed_phase and refusal.get("path") and refusal in during_item
                    and quirks.is_subinterpreter_refusal(refusal["message"])):
                continue
            if failed_phase is not None:
                # The refusal reached the test (in its body or a fixture): say what it means
                # and how to fix it, once.
                headline = advice.refusal_message(refusal["module"], config_name, refusal["message"],
                                                  refusal.get("path"))
                if all(s.text != headline for s in collected.synthetic):
                    collected.synthetic.append(reports.Synthetic(failed_phase, headline, Verdict.IMPORT_REFUSED))
                continue
            key = (refusal["module"], config_name)
            interps, _ = collected.fallbacks.get(key, ([], ""))
            if index + 1 not in interps:
                interps.append(index + 1)
            collected.fallbacks[key] = (interps, refusal["message"])

    def report_fallbacks(self, collected: reports.Collected) -> None:
        """One warning (or, strict, one failure) per refused module and config."""
        for (module, config_name), (interps, message) in collected.fallbacks.items():
            plural = "s" if len(interps) > 1 else ""
            text = messages.FALLBACK_USED.format(
                module=module, config=config_name, interp=f"{plural} {', '.join(map(str, interps))}".strip(),
                message=message)
            if self.strict:
                collected.synthetic.append(reports.Synthetic("call", text, Verdict.IMPORT_REFUSED))
            else:
                collected.warnings.append(text)

    def _add_leftovers(self, config_name: str, index: int, inner: Mapping[str, Any],
                       slot: Mapping[str, Any], collected: reports.Collected) -> None:
        names = inner.get("leftover_threads", ())
        texts = []
        for name in dict.fromkeys(names):
            texts.append(messages.LEFT_THREAD.format(name=name, interp=index + 1, config=config_name))
        if slot.get("end_error") and not names:
            texts.append(messages.NOT_ENDED.format(interp=index + 1, config=config_name, reason=slot["end_error"]))
        for text in texts:
            # Threads left behind are a state leak (detector 4): --subinterp-leaks decides.
            self._apply_leak_policy(collected, "teardown", text, Verdict.LEFT_THREAD)

    def _apply_leak_policy(self, collected: reports.Collected, when: str, text: str, verdict: Verdict) -> None:
        policy = collected.leak_policy
        if policy == "fail":
            collected.synthetic.append(reports.Synthetic(when, text, verdict))
        elif policy == "warn":
            collected.leak_warnings.append(text)

    def _add_leaks(self, item: pytest.Item, settings: Settings, config_name: str,
                   result: Mapping[str, Any], collected: reports.Collected) -> None:
        """Detectors 1, 2, 3 and 5 (leaks/verdict.py); 4 is _add_leftovers."""
        per_interpreter = [inner_output(slot).get("leak_data", {}).get(item.nodeid) for slot in result["interpreters"]]
        all_ended = all(slot["ended"] for slot in result["interpreters"])
        measurement = result.get("leak_measurement") or {}
        findings, figures = leak_verdict.battery_findings(config_name, measurement, per_interpreter, all_ended)
        for finding in findings:
            self._apply_leak_policy(collected, "call", finding.message(), Verdict.LEAKED)
        collected.leak_figures.append(figures)
