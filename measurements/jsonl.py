"""Reading JSON-lines files (bench results): the one loop the engine (resuming a sweep) and the
advisor (the report command) both use."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)


def parse_jsonl(text: str, source: str = "") -> list[dict[str, Any]]:
    """Every parseable JSON object line; a torn last line (a killed writer) is skipped and logged."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            log.debug("%s: skipped a line that is not JSON (%s)", source or "results", err.msg)
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
