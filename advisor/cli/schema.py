"""`ecolobster schema [NAME]`: the JSON Schema of what EcoLobster prints and of what it accepts.

Generated from the pydantic models, so it cannot drift from the code: `answer` is what every
question command prints with `--format json` and what every MCP tool returns; the inputs are the
typed arguments of the MCP tools, which are also the fields each command resolves a question to.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from advisor.limits import UsageError

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _answer() -> dict[str, Any]:
    from advisor.api import Answer

    schema = Answer.model_json_schema(mode="serialization")
    # `query` is the resolved query as a dict (a refused question holds only its text): its known
    # fields are the Query's, shown here so gpu_count, framework, requests_per_month ... are documented
    q = _query()
    prop = schema["properties"]["query"]
    prop["properties"] = q["properties"]
    prop["description"] = (prop.get("description", "") + "; the fields of the resolved Query (see `ecolobster "
                           "schema query`), without those that were None")
    schema.setdefault("$defs", {}).update(q.get("$defs", {}))
    return schema


def _query() -> dict[str, Any]:
    from advisor.api import Query

    return Query.model_json_schema(mode="serialization")


def _measurement() -> dict[str, Any]:
    from advisor.api import MeasurementRow

    return MeasurementRow.model_json_schema(mode="serialization")


def _measurements() -> dict[str, Any]:
    from pydantic import TypeAdapter

    from advisor.api import MeasurementRow

    return TypeAdapter(list[MeasurementRow]).json_schema(mode="serialization")


# name -> (what it describes, schema factory)
OUTPUTS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "answer": ("the Answer: `--format json` of ask, optimize, compare, estimate, diagnose, audit and plan, "
               "and the structured result of every MCP tool", _answer),
    "query": ("the resolved query: every slot read from a question (stated or defaulted), the words each came "
              "from, conversions and not_understood; `ask --explain-parse --format json` prints it", _query),
    "measurement": ("one measurement row: `data show ID --format json`", _measurement),
    "measurements": ("an array of rows: `data list|export --format json`", _measurements),
}


def inputs() -> dict[str, tuple[str, Callable[[], dict[str, Any]]]]:
    """Input schemas, keyed by MCP tool name (these tools mirror the commands of the same name)."""
    from advisor.mcp.tools import tool_specs

    out: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {}
    for spec in tool_specs(include_benchmark=True):
        model = spec.input_model
        out[spec.name] = (f"input of the `{spec.name}` MCP tool: {spec.description}",
                          partial(model.model_json_schema, mode="validation"))
    return out


def _with_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": DIALECT, **schema}


def all_schemas() -> dict[str, Any]:
    return {
        "outputs": {name: _with_dialect(fn()) for name, (_, fn) in OUTPUTS.items()},
        "inputs": {name: _with_dialect(fn()) for name, (_, fn) in inputs().items()},
    }


def schema(name: str) -> dict[str, Any]:
    table = {**OUTPUTS, **inputs()}
    key = name.strip().lower().replace("-", "_")
    if key not in table:
        import difflib

        near = difflib.get_close_matches(key, list(table), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise UsageError(f"no schema named '{name}'.{hint} Accepted: {', '.join(table)}.")
    return _with_dialect(table[key][1]())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the Answer and of each command's input",
                       description="Print JSON Schemas generated from the pydantic models. Without NAME: "
                                   "{\"outputs\": {...}, \"inputs\": {...}} with every schema.")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="one schema: answer, measurement, measurements, or a tool input "
                        "(ask, optimize, compare, estimate, diagnose, audit, plan_finetune, query_measurements, ...)")
    p.add_argument("--list", action="store_true", help="list the schema names and what each describes")
    p.add_argument("--format", choices=["json", "markdown"], default="json",
                   help="json (default); markdown only changes --list")
    p.set_defaults(handler=cmd_schema)


def cmd_schema(args: argparse.Namespace) -> int:
    if args.list:
        entries = [("output", n, d) for n, (d, _) in OUTPUTS.items()] + \
                  [("input", n, d) for n, (d, _) in inputs().items()]
        if args.format == "json":
            print(json.dumps([{"name": n, "kind": k, "describes": d} for k, n, d in entries], indent=2))
        else:
            print("| name | kind | describes |\n|---|---|---|")
            for k, n, d in entries:
                cell = d.replace("|", "\\|")  # a bare | would split the Markdown cell
                print(f"| {n} | {k} | {cell} |")
        return 0
    data = schema(args.name) if args.name else all_schemas()
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0
