"""What one battery says about one test: crashes, hangs, refusals, fallbacks, left threads, leaks.

Turns a battery's outcome (the C helper's result, the inner sessions' JSON, the breadcrumbs and
the child's exit status) into a ``reports.Collected`` for each test it ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_subinterp import compat, crash, messages, quirks, reports
from pytest_subinterp.leaks import verdict as leak_verdict
from pytest_subinterp.options import Settings
from pytest_subinterp.verdicts import Verdict
from pytest_subinterp.workermanage import HARD_DEADLINE_GRACE_S, ChildExit

TAIL_CHARS = 20000


@dataclass
class BatteryOutcome:
    """Everything one battery's child left behind."""

    config: str
    exit: ChildExit
    result: dict[str, Any] | None
    progress: str
    stdout: str
    stderr: str
    child_error: str | None
    wall_s: float
    item_lines: dict[int, list[dict[str, Any]]]  # per interpreter: results of finished tests

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


def inner_output(slot: dict[str, Any]) -> dict[str, Any]:
    """What inner.run returned in one interpreter of a battery result ({} if nothing readable)."""
    try:
        return json.loads(slot.get("entry_output") or "{}")
    except ValueError:
        return {}


def _tail(text: str) -> str:
    return text if len(text) <= TAIL_CHARS else "...\n" + text[-TAIL_CHARS:]


CALL_STATUS = ("passed", "failed", "not run", "error")  # _subinterp.CALL_PASSED, ...


def battery_record(settings: Settings, outcome: BatteryOutcome, generation: int | None = None) -> dict[str, Any]:
    """One battery as the JSON report shows it (see docs/json-report.md); `generation`: the
    test's position in a module-scope battery, to keep only its calls."""
    result = outcome.result or {}
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
        "hung": bool(result.get("hung")) or outcome.exit.killed_after_deadline,
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
        if result is not None and result.get("hung"):
            self._add_hang(item, settings, outcome, collected)
            return
        if crashed:
            self._add_crash(item, settings, outcome, collected)
            return
        assert result is not None
        for slot in result["interpreters"]:
            self._analyse_interpreter(item, settings, outcome.config, slot, collected, last)
        if settings.leaks != "off":
            measured = result if last else {"interpreters": result["interpreters"]}
            self._add_leaks(item, settings, outcome.config, measured, collected)

    def _where_text(self, settings: Settings, config_name: str, where: crash.Where | None,
                    battery: str | None = None) -> str:
        if battery in ("lifetime-test", "lifetime-control"):
            settings = settings.replace(interpreters=1, threads=1, rounds=1)  # leaks/sequence.py's series
        if where is None or where.interp < 0:
            text = messages.CRASH_WHERE_UNKNOWN.format(config=config_name)
        elif where.thread < 0:
            text = messages.CRASH_WHERE_CREATOR.format(
                interp=where.interp + 1, n_interps=settings.interpreters, config=config_name,
                phase=where.user_phase)
        else:
            text = messages.CRASH_WHERE.format(
                interp=where.interp + 1, n_interps=settings.interpreters, config=config_name,
                thread=where.thread + 1, n_threads=settings.threads, round=max(where.round, 0) + 1,
                n_rounds=settings.rounds, phase=where.user_phase)
        stage = messages.CRASH_STAGE.get(battery or "")
        return f"{text}, {stage}" if stage else text

    def _crash_sections(self, outcome: BatteryOutcome, progress: crash.Progress) -> list[tuple[str, str]]:
        sections = []
        if progress.python_stack:
            sections.append(("subinterp crashing thread (Python stack)", "\n".join(progress.python_stack)))
        if progress.native_stack:
            sections.append(("subinterp crashing thread (native stack)", "\n".join(progress.native_stack)))
        if outcome.stderr.strip():
            sections.append(("Captured stderr (worker)", _tail(outcome.stderr)))
        if outcome.child_error:
            sections.append(("subinterp worker error", outcome.child_error))
        sections.append(("subinterp breadcrumbs", _tail(outcome.progress)))
        return sections

    def _add_crash(self, item: pytest.Item, settings: Settings, outcome: BatteryOutcome,
                   collected: reports.Collected) -> None:
        progress = crash.parse_progress(outcome.progress)
        where = progress.culprit
        where_text = self._where_text(settings, outcome.config, where, progress.battery)
        if outcome.exit.killed_after_deadline:
            text = messages.KILLED_AFTER_DEADLINE.format(
                nodeid=item.nodeid, grace=HARD_DEADLINE_GRACE_S, timeout=settings.timeout, where=where_text)
            verdict = Verdict.HUNG
        else:
            if outcome.exit.signal is not None:
                how = crash.signal_name(outcome.exit.signal)
            elif progress.crash_signal:
                how = progress.crash_signal
            elif outcome.exit.exit_code is not None:
                how = f"exit code {outcome.exit.exit_code}"
            else:
                how = "an unknown status"
            if progress.crash_signal and outcome.exit.signal is not None and progress.crash_signal != how:
                how = f"{progress.crash_signal} (ended by {how})"
            text = messages.CRASHED.format(how=how, nodeid=item.nodeid, where=where_text)
            verdict = Verdict.CRASHED
        note = reports.known_defect_note(outcome.stderr + outcome.progress, outcome.config)
        if note:
            text += "\n" + note
        when = where.when if where is not None else "call"
        collected.synthetic.append(reports.Synthetic(when, text, verdict, self._crash_sections(outcome, progress)))

    def _add_hang(self, item: pytest.Item, settings: Settings, outcome: BatteryOutcome,
                  collected: reports.Collected) -> None:
        progress = crash.parse_progress(outcome.progress)
        where = progress.culprit
        text = messages.HUNG.format(nodeid=item.nodeid, timeout=settings.timeout,
                                    where=self._where_text(settings, outcome.config, where, progress.battery))
        stacks = "\n".join(progress.hang_stacks) or "(no Python stack could be read)"
        sections = [("subinterp breadcrumbs", _tail(outcome.progress))]
        if outcome.stderr.strip():
            sections.append(("Captured stderr (worker)", _tail(outcome.stderr)))
        collected.synthetic.append(reports.Synthetic(where.when if where else "call", text + "\n" + stacks,
                                                     Verdict.HUNG, sections))

    def _analyse_interpreter(self, item: pytest.Item, settings: Settings, config_name: str,
                             slot: dict[str, Any], collected: reports.Collected, last: bool = True) -> None:
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
        entry = reports.InterpreterReports(label, {}, None)
        for data in inner["reports"]:
            report = self.config.hook.pytest_report_from_serializable(config=self.config, data=data)
            if isinstance(report, pytest.TestReport) and isinstance(report.longrepr, list):
                report.longrepr = tuple(report.longrepr)  # a skip's (path, lineno, reason) via JSON
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

    @staticmethod
    def _refusal_headline(text: str, refused: list[dict[str, Any]], config_name: str) -> str | None:
        """What a collection error that is a refused (or blocked) import means, or None."""
        version = compat.python_version()
        if refused:
            return reports.refusal_message(refused[0]["module"], config_name, refused[0]["message"])
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
        refusals = [*inner.get("collection_refusals", ()), *inner.get("item_refusals", {}).get(item.nodeid, ())]
        for refusal in refusals:
            if quirks.is_stdlib_path(refusal.get("path")):
                continue
            failed_phase = next((when for when in ("setup", "call") if when in entry.reports
                                 and entry.reports[when].failed), None)
            if failed_phase is not None:
                # The refusal reached the test (in its body or a fixture): say what it means
                # and how to fix it, once.
                headline = reports.refusal_message(refusal["module"], config_name, refusal["message"])
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

    def _add_leftovers(self, config_name: str, index: int, inner: dict[str, Any],
                       slot: dict[str, Any], collected: reports.Collected) -> None:
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
                   result: dict[str, Any], collected: reports.Collected) -> None:
        """Detectors 1, 2, 3 and 5 (leaks/verdict.py); 4 is _add_leftovers."""
        per_interpreter = [inner_output(slot).get("leaks", {}).get(item.nodeid) for slot in result["interpreters"]]
        all_ended = all(slot["ended"] for slot in result["interpreters"])
        findings, figures = leak_verdict.battery_findings(config_name, result.get("leaks") or {}, per_interpreter,
                                                          all_ended)
        for finding in findings:
            self._apply_leak_policy(collected, "call", finding.message(), Verdict.LEAKED)
        collected.leak_figures.append(figures)
