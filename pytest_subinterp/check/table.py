"""``check``'s output: the text table with its numbered notes, and the JSON document.

docs/check.md describes both; the JSON keeps the rows as they are (verdicts are ``CheckVerdict``
members, which are ``str`` and so serialize as their words).
"""

from __future__ import annotations

import json
from typing import Any

JSON_SCHEMA_VERSION = 1
COLUMNS = ("MODULE", "CONFIG", "IMPORT", "INIT", "DECLARES", "THREADS", "CRASH/HANG",
           "LEAK/INTERP", "SHARED", "VERDICT")


def _cells(row: dict[str, Any]) -> list[str]:
    declares = row["declares"]
    declared = "; ".join(x for x in (declares["multiple_interpreters_text"], declares["gil_text"]) if x)
    threads = row["threads"]
    if threads is None:
        threads_cell = "-"
    elif threads["failed"]:
        threads_cell = f"{threads['failed']}/{threads['calls']} failed"
    else:
        threads_cell = f"{threads['interpreters']}x{threads['threads']} ok"
    event = row["crash"] or row["hang"]
    if event is None:
        crash_cell = "no" if row["threads"] is not None else "-"
    elif event["kind"] == "crash":
        crash_cell = f"{event['signal']} in {event['phase']}"
    else:
        crash_cell = f"hang in {event['phase']}"
    memory = row["memory"]
    leak_cell = "-" if memory is None else f"{memory['retained_kib']:+.0f} KiB"
    if row["shared"] is None:
        shared_cell = "-"
    elif not row["shared"]:
        shared_cell = "none"
    else:
        names = ", ".join(s["name"] for s in row["shared"])
        shared_cell = f"{len(row['shared'])}: {names}"
        if len(shared_cell) > 32:
            shared_cell = shared_cell[:29] + "..."
    return [row["module"], row["config"], str(row["import"] or "-"), row["init"] or "-",
            declared or ("-" if row["init"] is None else "none"), threads_cell, crash_cell,
            leak_cell, shared_cell, str(row["verdict"])]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The terminal table, then one numbered note per problem."""
    table = [list(COLUMNS)] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in table]
    notes = []
    for row in rows:
        for problem in row["problems"]:
            notes.append(f"[{row['module']} {row['config']}] {problem['verdict']}: {problem['message']}")
        for note in row["notes"]:
            notes.append(f"[{row['module']} {row['config']}] note: {note}")
    if notes:
        lines.append("")
        lines += [f"{n}. {text}" for n, text in enumerate(notes, 1)]
    return "\n".join(lines)


def format_json(rows: list[dict[str, Any]], *, python: str, configs: list[str], interpreters: int,
                threads: int, memory_rounds: int, fine: bool) -> str:
    """The ``--json`` document (schema JSON_SCHEMA_VERSION, docs/check.md)."""
    document = {
        "schema": JSON_SCHEMA_VERSION, "python": python, "configs": configs,
        "interpreters": interpreters, "threads": threads,
        "memory_rounds": memory_rounds, "results": rows, "fine": fine,
    }
    return json.dumps(document, indent=2)
