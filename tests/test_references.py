"""The reference documents (references/*.md) keep two promises.

1. Every figure is traceable. In a Markdown table with a ``row`` column, each ``row`` cell is a
   dataset row id and every recognised column equals that row's stored value; derived columns
   name their derivation in the header and are recomputed here from the rows. In a table with a
   ``gpu`` column, the GPU spec columns equal the GPU catalog. In prose, ``[row: ID]`` and
   ``[gpu: KEY]`` citations must exist, a measurement-looking figure must sit in a paragraph or
   list item that cites something, and a J/1k tok or tok/s figure must equal a cited row's value.
2. Nothing of the seeds is copied: no reference document shares a 12-word run (lowercase,
   punctuation stripped) with any seed document. The seeds live outside the repository, so a
   one-way fingerprint of their 12-word runs ships in tests/data; when the seeds are reachable
   (../shared/seeds or $ECOLOBSTER_SEEDS_DIR) the documents are also checked against the text
   itself and the fingerprint is checked to be current.

Regenerate the fingerprint after a seed changes: ``python tests/test_references.py``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from measurements import catalog
from measurements.schema import GPU, PRECISIONS, MeasurementRow
from measurements.store import load_rows

REPO = Path(__file__).resolve().parents[1]
REF_DIR = REPO / "references"
FINGERPRINT = Path(__file__).parent / "data" / "seed_12gram_fingerprint.bin"
SHINGLE = 12
DIGEST_BYTES = 6  # 48-bit digests: a chance collision among ~10^4 x 10^4 pairs is ~10^-6

OWNED = (
    "hardware_profiles.md",
    "quantization_guide.md",
    "batch_size_guide.md",
    "paradoxes.md",
    "methodology.md",
    "data_caveats.md",
    "h100_measurements.md",
    "h200_measurements.md",
)

# Table header -> MeasurementRow field. The first seven are the project's convention; the rest
# are extra columns a reference table may show, checked the same way.
ROW_COLUMNS: dict[str, str] = {
    "tok/s": "throughput_tok_s",
    "W": "power_w",
    "J/1k tok": "energy_j_per_1k_tok",
    "GB": "gpu_mem_gb",
    "batch": "batch_size",
    "precision": "precision",
    "model": "model_id",
    "gpu": "gpu",
    "kind": "kind",
    "params (B)": "params_b",
    "n": "n_runs",
    "tok/s std": "throughput_std",
    "J/1k tok std": "energy_std",
    "prompt tokens": "prompt_tokens",
    "gen tokens": "gen_tokens",
}

GPU_COLUMNS: dict[str, str] = {
    "VRAM (GB)": "vram_gb",
    "bandwidth (GB/s)": "mem_bandwidth_gbs",
    "TDP (W)": "tdp_w",
    "idle (W)": "idle_power_w",
    "FP16 TFLOPS": "fp16_tflops",
    "architecture": "architecture",
    "compute capability": "compute_capability",
    "name": "name",
    "BF16 TFLOPS": "bf16_tflops",
    "INT8 TOPS": "int8_tops",
    "FP8 support": "fp8_support",
    "BF16 support": "bf16_support",
}
# A GPU-table column that divides the catalog bandwidth by a stated number of bytes per token:
# the batch-1 decode ceiling of a memory-bound model of that size.
GPU_CEILING = re.compile(r"bandwidth \(GB/s\) ÷ (\d+(?:\.\d+)?) GB")

METRIC_FIELDS = {"J/1k tok": "energy_j_per_1k_tok", "tok/s": "throughput_tok_s", "W": "power_w"}
EMPTY = {"", "—", "-", "n/a"}
CITATION = re.compile(r"\[(row|gpu|model):\s*([^\]\s]+)\s*\]")
NUMBER = r"\d[\d,]*(?:\.\d+)?"
# A figure that needs a citation next to it: a number with a measurement unit, a signed
# percentage, or a multiplier.
FIGURE = re.compile(
    rf"(?<![\w.]){NUMBER}\s?(?:J/1k tok|tok/s|GB/s|GB|TFLOPS|kWh|Wh|W|J)(?![\w/])"
    rf"|(?<![\w.])[+\-−]{NUMBER}\s?%"
    rf"|(?<![\w.]){NUMBER}\s?×"
)
CHECKED_FIGURE = re.compile(rf"(?<![\w.])({NUMBER})\s?(J/1k tok|tok/s)(?![\w/])")
NUMERIC_CELL = re.compile(rf"^[~≈]?[+\-−]?{NUMBER}\s?(?:%|×|x)?$")


# ---------------------------------------------------------------- parsing


@dataclass
class Table:
    file: str
    line: int  # 1-based line of the header
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, cells)
    raw: dict[int, str]  # line number -> raw text


@dataclass
class Prose:
    file: str
    line: int
    text: str


def clean(cell: str) -> str:
    return cell.replace("**", "").replace("`", "").strip()


def split_cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [clean(c.replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", body)]


SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def parse(name: str, text: str) -> tuple[list[Table], list[Prose]]:
    """Split a Markdown document into tables and prose units (paragraphs, list items,
    headings); fenced code is neither."""
    tables: list[Table] = []
    prose: list[Prose] = []
    lines = text.splitlines()
    in_code = False
    unit: Prose | None = None
    i = 0

    def flush() -> None:
        nonlocal unit
        if unit is not None:
            prose.append(unit)
            unit = None

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            flush()
            in_code = not in_code
            i += 1
            continue
        if in_code:
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and SEPARATOR.match(lines[i + 1].strip()):
            flush()
            table = Table(name, i + 1, split_cells(line), [], {i + 1: line})
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                table.rows.append((i + 1, split_cells(lines[i])))
                table.raw[i + 1] = lines[i]
                i += 1
            tables.append(table)
            continue
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            prose.append(Prose(name, i + 1, stripped))
        elif LIST_ITEM.match(line) or unit is None:
            flush()
            unit = Prose(name, i + 1, stripped)
        else:
            unit.text += " " + stripped
        i += 1
    flush()
    return tables, prose


def number(cell: str) -> float:
    """A printed number: thousands separators, a unicode minus and a trailing %/× allowed."""
    t = cell.replace(",", "").replace("\u2009", "").replace("−", "-").strip()
    t = t.lstrip("~≈").rstrip("%×x").strip()
    return float(t)


def decimals(cell: str) -> int:
    t = cell.replace(",", "").rstrip("%×x ").strip()
    return len(t.split(".", 1)[1]) if "." in t else 0


# ---------------------------------------------------------------- derivations


@dataclass(frozen=True)
class Derived:
    compute: Callable[[MeasurementRow], float | None]
    percent: bool = False


def reference_row(row: MeasurementRow, ref: str, rows: list[MeasurementRow]) -> MeasurementRow:
    """The row `row` is compared with: same GPU, model and token lengths, and either another
    precision at the same batch size (ref = 'fp16', 'int8_mixed', ...) or another batch size at
    the same precision (ref = 'bs1', 'bs8', ...)."""
    m = re.fullmatch(r"bs(\d+)", ref)
    if m:
        want = {"batch_size": int(m.group(1)), "precision": row.precision}
    elif ref in PRECISIONS:
        want = {"batch_size": row.batch_size, "precision": ref}
    else:
        raise AssertionError(f"unknown reference '{ref}': use a precision ({', '.join(PRECISIONS)}) or bs<N>")
    same = ("gpu", "gpu_count", "model_id", "weights", "prompt_tokens", "gen_tokens", "kind", "task")
    hits = [
        r for r in rows
        if all(getattr(r, f) == getattr(row, f) for f in same)
        and all(getattr(r, f) == v for f, v in want.items())
    ]
    if len(hits) > 1:
        # a superseded row is no reference where the row replacing it is there
        hits = [r for r in hits if r.is_evidence]
    if len(hits) != 1:
        raise AssertionError(
            f"{len(hits)} reference rows for '{ref}' of {row.id}: "
            f"{[r.id for r in hits] or 'none'} (need exactly one)"
        )
    return hits[0]


def derived_column(header: str, rows: list[MeasurementRow]) -> Derived | None:
    """The recomputation a derived header names, or None when the header is not a derivation."""
    m = re.fullmatch(r"Δ (J/1k tok|tok/s|W) vs (\w+) \(%\)", header)
    if m:
        f, ref = METRIC_FIELDS[m.group(1)], m.group(2)

        def pct(r: MeasurementRow) -> float | None:
            base = getattr(reference_row(r, ref, rows), f)
            val = getattr(r, f)
            return None if base is None or val is None else (val / base - 1.0) * 100.0

        return Derived(pct, percent=True)
    m = re.fullmatch(r"(J/1k tok|tok/s|W) vs (\w+) \(×\)", header)
    if m:
        f, ref = METRIC_FIELDS[m.group(1)], m.group(2)

        def ratio(r: MeasurementRow) -> float | None:
            base = getattr(reference_row(r, ref, rows), f)
            val = getattr(r, f)
            return None if base is None or val is None else val / base

        return Derived(ratio)
    fixed: dict[str, Callable[[MeasurementRow], float | None]] = {
        "tok/s per sequence (tok/s ÷ batch)": lambda r: (
            None if r.throughput_tok_s is None else r.throughput_tok_s / r.batch_size),
        "J/request (J/1k tok × gen tokens ÷ 1000)": lambda r: (
            None if r.energy_j_per_1k_tok is None or r.gen_tokens is None
            else r.energy_j_per_1k_tok * r.gen_tokens / 1000.0),
        "implied W (J/1k tok × tok/s ÷ 1000)": lambda r: (
            None if r.energy_j_per_1k_tok is None or r.throughput_tok_s is None
            else r.energy_j_per_1k_tok * r.throughput_tok_s / 1000.0),
        "implied J/1k tok (W ÷ tok/s × 1000)": lambda r: (
            None if r.power_w is None or r.throughput_tok_s is None
            else r.power_w / r.throughput_tok_s * 1000.0),
        "tok/J (1000 ÷ J/1k tok)": lambda r: (
            None if r.energy_j_per_1k_tok is None else 1000.0 / r.energy_j_per_1k_tok),
    }
    if header in fixed:
        return Derived(fixed[header])
    return None


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class Known:
    """What a citation or a table cell can refer to."""

    rows: dict[str, MeasurementRow]
    all_rows: list[MeasurementRow]
    gpus: dict[str, GPU]
    models: frozenset[str]

    @classmethod
    def load(cls) -> Known:
        rows = load_rows(include_local=False)
        return cls({r.id: r for r in rows}, rows, {g.key: g for g in catalog.gpus()},
                   frozenset(m.key for m in catalog.models()))

    def missing(self, kind: str, key: str) -> str | None:
        if kind == "row" and key not in self.rows:
            return f"[row: {key}] is not a dataset row id (see `ecolobster data list`)"
        if kind == "gpu" and key not in self.gpus:
            return f"[gpu: {key}] is not a GPU catalog key"
        if kind == "model" and key not in self.models:
            return f"[model: {key}] is not a model catalog key"
        return None


def check_cell(where: str, header: str, cell: str, expected: object) -> list[str]:
    if expected is None:
        return [] if cell in EMPTY else [f"{where}: '{header}' is '{cell}' but the source has no value"]
    if cell in EMPTY:
        return [f"{where}: '{header}' is empty but the source has {expected!r}"]
    if isinstance(expected, bool):
        ok = cell.lower() in (("yes", "true") if expected else ("no", "false"))
        return [] if ok else [f"{where}: '{header}' is '{cell}', source says {expected}"]
    if isinstance(expected, str):
        return [] if cell == expected else [f"{where}: '{header}' is '{cell}', source says {expected!r}"]
    assert isinstance(expected, int | float), f"unexpected source value {expected!r}"
    try:
        got = number(cell)
    except ValueError:
        return [f"{where}: '{header}' cell '{cell}' is not a number"]
    if math.isclose(got, float(expected), rel_tol=1e-9, abs_tol=1e-9):
        return []
    return [f"{where}: '{header}' is {cell}, source says {expected}"]


def check_derived(where: str, header: str, cell: str, compute: Callable[[], float | None],
                  percent: bool) -> list[str]:
    try:
        want = compute()
    except AssertionError as err:
        return [f"{where}: '{header}': {err}"]
    if want is None:
        return [] if cell in EMPTY else [f"{where}: '{header}' is '{cell}' but the rows give no value"]
    if cell in EMPTY:
        # The reference row itself may print a dash instead of 0 % or 1.0 ×.
        neutral = 0.0 if percent else 1.0
        if math.isclose(want, neutral, abs_tol=1e-9):
            return []
        return [f"{where}: '{header}' is empty, recomputed {want:.3f}"]
    try:
        got = number(cell)
    except ValueError:
        return [f"{where}: '{header}' cell '{cell}' is not a number"]
    tol = 0.1 if percent else 0.5 * 10 ** -decimals(cell) + 1e-9
    if abs(got - want) <= tol:
        return []
    return [f"{where}: '{header}' is {cell}, recomputed from the rows {want:.3f}"]


def check_table(t: Table, known: Known) -> list[str]:
    """A table keyed by `row` (dataset ids) and/or `gpu` (catalog keys)."""
    problems: list[str] = []
    header = t.header
    has_row, has_gpu = "row" in header, "gpu" in header
    derived = {h: derived_column(h, known.all_rows) for h in header}
    for line, cells in t.rows:
        where = f"{t.file}:{line}"
        for kind, key in CITATION.findall(t.raw[line]):  # citations inside cells must exist too
            if msg := known.missing(kind, key):
                problems.append(f"{where}: {msg}")
        if len(cells) != len(header):
            problems.append(f"{where}: {len(cells)} cells for {len(header)} header columns")
            continue
        cell = dict(zip(header, cells, strict=True))
        row = known.rows.get(cell["row"]) if has_row else None
        if has_row and row is None:
            problems.append(f"{where}: unknown row id '{cell['row']}' (see `ecolobster data list`)")
        if row is not None and not row.is_evidence and _why_not_evidence(row) not in t.raw[line].lower():
            problems.append(f"{where}: row '{row.id}' is {_why_not_evidence(row)}ed; its line must say so")
        g = known.gpus.get(cell["gpu"]) if has_gpu else None
        if has_gpu and g is None:
            problems.append(f"{where}: '{cell['gpu']}' is not a GPU catalog key ({', '.join(known.gpus)})")
        for h in header:
            c = cell[h]
            ceiling = GPU_CEILING.fullmatch(h)
            d = derived[h]
            if h == "row" or (h == "gpu" and row is None):
                continue
            if h in ROW_COLUMNS and has_row:
                if row is not None:
                    problems += check_cell(where, h, c, getattr(row, ROW_COLUMNS[h]))
            elif h in GPU_COLUMNS and has_gpu:
                if g is not None:
                    problems += check_cell(where, h, c, getattr(g, GPU_COLUMNS[h]))
            elif ceiling and has_gpu:
                if g is not None:
                    bw, per_token = g.mem_bandwidth_gbs, float(ceiling.group(1))
                    problems += check_derived(where, h, c, lambda bw=bw, b=per_token: bw / b, False)
            elif d is not None and has_row:
                if row is not None:
                    problems += check_derived(where, h, c, lambda d=d, r=row: d.compute(r), d.percent)
            elif NUMERIC_CELL.match(c):
                problems.append(
                    f"{where}: column '{h}' holds the figure '{c}' but is neither a row field "
                    f"({', '.join(ROW_COLUMNS)}), a catalog field ({', '.join(GPU_COLUMNS)}) nor a "
                    "named derivation"
                )
    return problems


def _why_not_evidence(row: MeasurementRow) -> str:
    """The word stem a citation of a non-evidence row must carry: 'simulat' or 'supersed'."""
    return "supersed" if row.superseded_by else "simulat"


def check_prose(p: Prose, known: Known) -> list[str]:
    """A paragraph, list item, heading or line of an unkeyed table."""
    problems: list[str] = []
    where = f"{p.file}:{p.line}"
    cited_rows: list[MeasurementRow] = []
    citations = CITATION.findall(p.text)
    for kind, key in citations:
        if msg := known.missing(kind, key):
            problems.append(f"{where}: {msg}")
        elif kind == "row":
            row = known.rows[key]
            cited_rows.append(row)
            if not row.is_evidence and _why_not_evidence(row) not in p.text.lower():
                problems.append(f"{where}: cites the {_why_not_evidence(row)}ed row {key} without saying it is "
                                f"{_why_not_evidence(row)}ed")
    bare = CITATION.sub("", p.text)
    figures = FIGURE.findall(bare)
    if figures and not citations:
        problems.append(
            f"{where}: figure(s) {figures} with no [row: …], [gpu: …] or [model: …] citation beside them")
    for value, unit in CHECKED_FIGURE.findall(bare):
        field = METRIC_FIELDS[unit]
        v = number(value)
        if cited_rows and not any(
            getattr(r, field) is not None and math.isclose(getattr(r, field), v, rel_tol=1e-9)
            for r in cited_rows
        ):
            problems.append(f"{where}: {value} {unit} matches none of the cited rows {[r.id for r in cited_rows]}")
    return problems


def check_document(name: str, text: str, known: Known) -> list[str]:
    tables, prose = parse(name, text)
    problems: list[str] = []
    for t in tables:
        if "row" in t.header or "gpu" in t.header:
            problems += check_table(t, known)
        else:
            # A table keyed by neither is held to the prose rule, line by line.
            for line, raw in t.raw.items():
                problems += check_prose(Prose(name, line, raw), known)
    for p in prose:
        problems += check_prose(p, known)
    return problems


# ---------------------------------------------------------------- seed overlap


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", "", text.lower()).split()


def shingles(text: str, n: int = SHINGLE) -> set[str]:
    w = words(text)
    return {" ".join(w[i:i + n]) for i in range(len(w) - n + 1)}


def digest(shingle: str) -> bytes:
    return hashlib.blake2b(shingle.encode("utf-8"), digest_size=DIGEST_BYTES).digest()


def seeds_dir() -> Path | None:
    for cand in (os.environ.get("ECOLOBSTER_SEEDS_DIR"), REPO.parent / "shared" / "seeds"):
        if cand and Path(cand).is_dir() and any(Path(cand).glob("[0-9]*.txt")):
            return Path(cand)
    return None


def seed_texts(d: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(d.glob("[0-9]*.txt"))}


def fingerprint_of(texts: Iterable[str]) -> bytes:
    out: set[bytes] = set()
    for t in texts:
        out |= {digest(s) for s in shingles(t)}
    return b"".join(sorted(out))


def load_fingerprint() -> set[bytes]:
    data = FINGERPRINT.read_bytes()
    assert len(data) % DIGEST_BYTES == 0, f"{FINGERPRINT} is truncated"
    return {data[i:i + DIGEST_BYTES] for i in range(0, len(data), DIGEST_BYTES)}


# ---------------------------------------------------------------- fixtures and tests


@pytest.fixture(scope="module")
def known() -> Known:
    return Known.load()


def reference_files() -> list[Path]:
    return sorted(REF_DIR.glob("*.md"))


@pytest.mark.parametrize("name", OWNED)
def test_owned_documents_exist_and_cite_evidence(name):
    path = REF_DIR / name
    assert path.is_file(), f"references/{name} is missing"
    text = path.read_text(encoding="utf-8")
    assert len(words(text)) > 300, f"references/{name} is too thin to be useful"
    assert CITATION.search(text), f"references/{name} cites no row or GPU"


@pytest.mark.parametrize("path", reference_files(), ids=lambda p: p.name)
def test_every_figure_is_traceable(path, known):
    problems = check_document(path.name, path.read_text(encoding="utf-8"), known)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", reference_files(), ids=lambda p: p.name)
def test_no_seed_run_copied(path):
    mine = shingles(path.read_text(encoding="utf-8"))
    prints = load_fingerprint()
    hits = sorted(s for s in mine if digest(s) in prints)
    assert not hits, f"{path.name} repeats seed text: {hits[:5]}"
    d = seeds_dir()
    if d is not None:  # the seed text itself, where this checkout can reach it
        for seed, text in seed_texts(d).items():
            common = sorted(mine & shingles(text))
            assert not common, f"{path.name} repeats {seed}: {common[:3]}"


def test_fingerprint_is_current():
    """The shipped fingerprint covers every seed run; where the seeds are reachable it must be
    exactly their fingerprint (regenerate with `python tests/test_references.py`)."""
    prints = load_fingerprint()
    assert len(prints) > 10_000, "the fingerprint should hold one digest per 12-word seed run"
    d = seeds_dir()
    if d is not None:
        assert fingerprint_of(seed_texts(d).values()) == FINGERPRINT.read_bytes(), (
            "tests/data/seed_12gram_fingerprint.bin is stale: run `python tests/test_references.py`"
        )


def test_paradoxes_cover_the_four_with_evidence(known):
    rows = known.rows
    text = (REF_DIR / "paradoxes.md").read_text(encoding="utf-8")
    cited = {rows[k] for kind, k in CITATION.findall(text) if kind == "row" and k in rows}
    tables, _ = parse("paradoxes.md", text)
    cited |= {rows[c[t.header.index("row")]] for t in tables if "row" in t.header
              for _, c in t.rows if c[t.header.index("row")] in rows}
    precisions = {r.precision for r in cited}
    assert {"int8_mixed", "int8_pure", "nf4", "fp8", "fp16"} <= precisions
    assert any(r.batch_size > 1 for r in cited), "the BS=1 paradox needs batched evidence"
    assert all(r.is_evidence for r in cited), "simulated rows are never evidence"
    for word in ("decomposition", "NF4", "batch", "FP8", "nightly"):
        assert word.lower() in text.lower()


# ---- the checker itself can fail (each of these is a mistake it must catch)

ROW = "seed003-rtx5090-qwen2-1.5b-nf4-bs1"


@pytest.mark.parametrize(
    "doc, needle",
    [
        (f"| row | J/1k tok |\n|---|---|\n| {ROW} | 3,124 |\n", "source says 3123"),
        ("| row | tok/s |\n|---|---|\n| no-such-row | 1 |\n", "unknown row id"),
        (f"| row | Δ J/1k tok vs fp16 (%) |\n|---|---|\n| {ROW} | +31.0 |\n", "recomputed"),
        (f"| row | guess |\n|---|---|\n| {ROW} | 42.0 |\n", "named derivation"),
        (f"| row | Δ J/1k tok vs bf16 (%) |\n|---|---|\n| {ROW} | +1.0 |\n", "0 reference rows"),
        ("NF4 costs +29.4% more energy here.\n", "no [row"),
        (f"NF4 runs at 41.0 tok/s [row: {ROW}].\n", "matches none"),
        ("See [row: seed999-nothing].\n", "not a dataset row"),
        ("| gpu | TDP (W) |\n|---|---|\n| not_a_gpu | 1 |\n", "not a GPU catalog key"),
        ("[row: seed000-rtx4090-phi-3-mini-fp16-full-sim] used 2,541 Wh.\n", "simulated"),
        ("| gpu | TDP (W) |\n|---|---|\n| a800 | 401 |\n", "source says 400"),
        ("| gpu | bandwidth (GB/s) ÷ 14.484 GB |\n|---|---|\n| a800 | 150 |\n", "recomputed"),
        ("Weights take 14.5 GB [model: no-such-model].\n", "not a model catalog key"),
        ("| setting | value |\n|---|---|\n| idle | 65 W |\n", "no [row"),
    ],
)
def test_checker_catches(doc, needle, known):
    problems = check_document("t.md", doc, known)
    assert any(needle in p for p in problems), problems


def test_checker_accepts_correct_figures(known):
    g = next(iter(known.gpus.values()))
    doc = (
        f"| row | tok/s | J/1k tok | Δ J/1k tok vs fp16 (%) | implied J/1k tok (W ÷ tok/s × 1000) |\n"
        f"|---|---|---|---|---|\n| `{ROW}` | 41.57 | 3,123 | +29.5 | 3,123 |\n\n"
        f"| gpu | TDP (W) | bandwidth (GB/s) ÷ 14.484 GB |\n|---|---|---|\n"
        f"| {g.key} | {g.tdp_w:g} | {g.mem_bandwidth_gbs / 14.484:.0f} |\n\n"
        "Weights of 14.484 GB [model: mistral-7b-v0.2].\n\n"
        f"NF4 here gives 3,123 J/1k tok at 41.57 tok/s [row: {ROW}],\nwrapped onto a second line.\n"
        "```\nno 5 W check inside code\n```\n"
    )
    assert check_document("t.md", doc, known) == []


def test_shingles_normalise_case_and_punctuation():
    a = "The Quick, brown fox -- jumps over the lazy dog; again and again, twice!"
    b = "the quick brown fox jumps over the lazy dog again and again twice"
    assert shingles(a) == shingles(b) and len(shingles(a)) == 2


if __name__ == "__main__":  # regenerate the fingerprint from the seeds
    d = seeds_dir()
    if d is None:
        sys.exit("seed documents not found: set ECOLOBSTER_SEEDS_DIR")
    FINGERPRINT.parent.mkdir(parents=True, exist_ok=True)
    FINGERPRINT.write_bytes(fingerprint_of(seed_texts(d).values()))
    print(f"wrote {FINGERPRINT} ({FINGERPRINT.stat().st_size // DIGEST_BYTES} digests)")
