"""`ecolobster report` and `--format html`: pages built from a shipped raw H200 archive, from CPU bench
results and from answers, opened in headless Chromium (no console message, the expected figures,
a screenshot), and figures that carry the same numbers as the JSON answer."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from browser import open_page

from advisor.cli import main

ROOT = Path(__file__).resolve().parents[1]
H200_RAW = ROOT / "measurements" / "data" / "h200_raw.tar.gz"
TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}
_FIGURE = re.compile(r'<figure class="eco-figure" data-kind="([^"]+)"(.*?)</figure>', re.S)
_VALUE = re.compile(r'data-label="([^"]*)" data-value="([^"]*)"')


def figures(page: str) -> list[tuple[str, dict[str, float]]]:
    """(kind, {label: value}) of every figure of a page, from the values written into its SVG."""
    return [(kind, {html.unescape(lab): float(v) for lab, v in _VALUE.findall(body)})
            for kind, body in _FIGURE.findall(page)]


def assert_offline(page: str) -> None:
    """Nothing the page loads comes from elsewhere: no external src/href, no @import or url()."""
    assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', page)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)


def assert_opens(path: Path, figures_expected: int, shot: Path) -> str:
    page = open_page(path, shot)
    assert page.console == [], f"console messages: {page.console}"
    assert f'data-figures-rendered="{figures_expected}"' in page.dom  # the page's script ran to the end
    assert page.dom.count('<figure class="eco-figure"') == figures_expected
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a page with figures, not a blank
    return page.dom


# --- a shipped raw archive -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def h200_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("h200") / "h200.html"
    assert main(["report", str(H200_RAW), "--out", str(out)]) == 0
    return out


def _archive_facts() -> tuple[int, list[dict]]:
    with tarfile.open(H200_RAW) as tf:
        traces = sum(1 for m in tf.getmembers() if m.name.startswith("traces/") and m.name.endswith(".csv"))
        f = tf.extractfile("inference.jsonl")
        assert f is not None
        recs = [json.loads(x) for x in f.read().decode().splitlines() if x.strip()]
    return traces, recs


def test_report_from_the_h200_archive_opens_in_chromium_with_every_figure(h200_report, tmp_path):
    traces, recs = _archive_facts()
    models = {r["config"]["model"] for r in recs if r["status"] == "ok" and r["energy_j_per_1k_tok"]}
    # one trace per configuration + energy/throughput per phase (inference, fine-tuning) + one batch
    # curve per inference model + the CV gates
    expected = traces + 2 + len(models) + 1
    assert (traces, len(models)) == (109, 4)  # 66 inference and 43 fine-tuning configurations
    dom = assert_opens(h200_report, expected, tmp_path / "h200.png")
    assert "Provenance" in dom and "580.159.04" in dom and "NVIDIA H200" in dom  # driver and GPU
    page = h200_report.read_text()
    assert_offline(page)
    kinds = [k for k, _ in figures(page)]
    assert kinds.count("trace") == traces and kinds.count("batch-energy") == 4 and kinds.count("cv") == 1


def test_h200_report_figures_carry_the_archive_numbers(h200_report):
    _, recs = _archive_facts()
    figs = figures(h200_report.read_text())
    summary = next(v for k, v in figs if k == "energy-inference")
    rec = next(r for r in recs if r["key"] == "syn-qwen2.5-7b-fp16-bs64-p128-g64")
    assert summary["qwen2.5-7b fp16 bs64 J/1k"] == rec["energy_j_per_1k_tok"]
    assert summary["qwen2.5-7b fp16 bs64 tok/s"] == rec["throughput_tok_s"]
    # The trace of that configuration marks its idle baseline and its three measured windows.
    traces = [v for k, v in figs if k == "trace" and "idle baseline W" in v
              and v["idle baseline W"] == rec["idle_power_w"]]
    assert len(traces) == 1
    windows = [v for lab, v in traces[0].items() if lab.startswith("window ")]
    assert windows == pytest.approx([r["t1"] - r["t0"] for r in rec["runs"]])
    # The CV figure: throughput CV = std / mean of the measured runs, in percent.
    cv = next(v for k, v in figs if k == "cv")
    assert cv["qwen2.5-7b fp16 bs64 throughput CV %"] == pytest.approx(
        100 * rec["throughput_std"] / rec["throughput_tok_s"])
    # J/token on the batch curve is J/1k tok / 1000.
    curve = next(v for k, v in figs if k == "batch-energy" and "fp16 bs64" in v and len(v) > 10)
    assert curve["fp16 bs64"] == pytest.approx(rec["energy_j_per_1k_tok"] / 1000)


# --- CPU bench results ---------------------------------------------------------------------------

def test_report_from_cpu_bench_results_opens_in_chromium_and_writes_pngs(tmp_path, capsys):
    ov = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]
    results = tmp_path / "bench.jsonl"
    assert main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", *ov, "--precision", "fp32", "--batch-size",
                 "1", "2", "--prompt-tokens", "8", "--gen-tokens", "4", "--runs", "3", "--warmup", "1", "--pause",
                 "0", "--device", "cpu", "--no-carbon", "--no-store", "--out", str(results),
                 "--format", "json"]) == 0
    recs = [json.loads(x) for x in results.read_text().splitlines()]
    capsys.readouterr()
    out, pngs = tmp_path / "cpu.html", tmp_path / "png"
    assert main(["report", str(results), "--out", str(out), "--png", str(pngs)]) == 0
    assert "2 figures" in capsys.readouterr().out
    # No trace and no energy on a CPU: the throughput figure and the CV gates, nothing invented.
    dom = assert_opens(out, 2, tmp_path / "cpu.png")
    assert "energy not measured" in dom and "no configuration kept a power trace" in dom
    figs = dict(figures(out.read_text()))
    assert set(figs) == {"energy-inference", "cv"}
    assert {lab: v for lab, v in figs["energy-inference"].items()} == {
        f"qwen2.5-0.5b fp32 bs{r['config']['batch_size']} tok/s": r["throughput_tok_s"] for r in recs}
    files = sorted(pngs.iterdir())
    assert len(files) == 2 and all(f.read_bytes()[:4] == b"\x89PNG" for f in files)


def test_report_of_dataset_rows_finds_their_traces_in_the_shipped_archive(tmp_path, capsys):
    out = tmp_path / "rows.html"
    # --task inference: the H200's NF4 QLoRA fine-tuning rows of the same model are not asked for
    args = ["report", "--gpu", "h200", "--model", "qwen2.5-7b", "--precision", "nf4", "--task", "inference"]
    assert main([*args, "--out", str(out)]) == 0
    figs = figures(out.read_text())
    assert [k for k, _ in figs] == ["energy-inference", "batch-energy", "cv", "trace", "trace"]
    from measurements.store import load_rows

    rows = {r.batch_size: r for r in load_rows() if r.gpu == "h200" and r.precision == "nf4"
            and r.model_id == "Qwen/Qwen2.5-7B" and r.task == "inference"}
    assert figs[0][1] == {f"Qwen2.5-7B nf4 bs{b} J/1k": r.energy_j_per_1k_tok for b, r in rows.items()} | {
        f"Qwen2.5-7B nf4 bs{b} tok/s": r.throughput_tok_s for b, r in rows.items()}
    assert {v["idle baseline W"] for k, v in figs if k == "trace"} == {r.idle_power_w for r in rows.values()}
    capsys.readouterr()
    # --format json: the same figures and values, for agents and scripts
    assert main([*args, "--out", str(out), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["configurations"] == 2 and summary["out"] == str(out)
    assert [(f["kind"], f["values"]) for f in summary["figures"]] == figs


# --- answers as pictures -------------------------------------------------------------------------

def _answer(capsys, argv: list[str], fmt: str) -> str:
    assert main([*argv, "--format", fmt]) == 0
    return capsys.readouterr().out


def test_compare_html_figures_carry_the_json_answer_numbers(capsys, tmp_path):
    argv = ["compare", "--model", "qwen2.5-7b", "--gpu", "h200"]
    answer = json.loads(_answer(capsys, argv, "json"))
    page = _answer(capsys, argv, "html")
    assert_offline(page)
    charts = [v for k, v in figures(page) if k == "chart"]
    assert len(charts) == len(answer["charts"]) >= 1
    for drawn, chart in zip(charts, answer["charts"], strict=True):
        assert drawn == {it["label"]: it["value"] for it in chart["items"]}
    # mood colours: the best (green) and the worst (red) bars in their colours
    assert "#2e7d32" in page and "#c62828" in page
    path = tmp_path / "compare.html"
    path.write_text(page)
    assert_opens(path, len(charts), tmp_path / "compare.png")


def test_batch_size_comparison_is_drawn_as_the_batch_curve(capsys):
    argv = ["compare", "--model", "qwen2.5-7b", "--gpu", "h200", "--axis", "batch_size"]
    answer = json.loads(_answer(capsys, argv, "json"))
    [(kind, drawn)] = figures(_answer(capsys, argv, "html"))
    assert kind == "batch-curve"
    assert drawn == {it["label"]: it["value"] for it in answer["charts"][0]["items"]}


def test_plan_html_draws_the_memory_breakdown_with_the_json_numbers(capsys, tmp_path):
    argv = ["plan", "--model", "olmo-7b", "--examples", "140", "--avg-tokens", "1500", "--seq-len", "2048",
            "--gpu", "rtx4090"]
    answer = json.loads(_answer(capsys, argv, "json"))
    page = _answer(capsys, argv, "html")
    [(kind, drawn)] = figures(page)
    assert kind == "breakdown"
    table = next(t for t in answer["tables"] if t["columns"][0] == "component")
    want = {f"{col} / {row[0]}": v for row in table["rows"] for col, v in zip(table["columns"][1:], row[1:],
                                                                               strict=True)
            if isinstance(v, int | float) and v > 0}
    assert drawn == want
    assert "peak allocated (PyTorch)" in " ".join(drawn) and "on the device (nvidia-smi)" in " ".join(drawn)
    path = tmp_path / "plan.html"
    path.write_text(page)
    assert_opens(path, 1, tmp_path / "plan.png")


# --- the checks themselves, and errors ----------------------------------------------------------

def test_the_browser_check_sees_console_errors_and_uncaught_exceptions(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><script>console.error("boom"); missingFn();</script></body></html>')
    page = open_page(bad, tmp_path / "bad.png")
    assert "boom" in page.console and any("missingFn" in c for c in page.console)


def test_without_matplotlib_html_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["compare", "--model", "qwen2.5-7b", "--gpu", "h200", "--format", "html"]) == 2
    assert 'pip install "ecolobster[report]"' in capsys.readouterr().err
    assert main(["report", str(H200_RAW), "--out", "/nonexistent/x.html"]) == 2
    assert 'pip install "ecolobster[report]"' in capsys.readouterr().err


def test_the_advisor_and_text_answers_never_import_matplotlib():
    code = ("import sys; from advisor.cli import main; main(['compare', '--model', 'qwen2.5-7b', '--gpu', 'h200', "
            "'--format', 'markdown']); import advisor.render, advisor.cli.report, advisor.bench_report; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("argv, message", [
    (["report", "/no/such/results.jsonl"], "does not exist"),
    (["report", str(H200_RAW), "--gpu", "h200"], "not both"),
    (["report", "--gpu", "h200", "--model", "no-such-model-xyz"], "no dataset row matches"),
    (["report", "--traces", "/tmp"], "--traces goes with a results file"),
])
def test_report_bad_input_is_a_clear_error(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_report_rejects_files_that_are_not_results(tmp_path, capsys):
    junk = tmp_path / "notes.jsonl"
    junk.write_text('{"hello": 1}\n')
    assert main(["report", str(junk)]) == 2
    assert "no result lines" in capsys.readouterr().err
    other = tmp_path / "data.csv"
    other.write_text("a,b\n")
    assert main(["report", str(other)]) == 2
    assert "Accepted: a bench results file (.jsonl) or a raw archive" in capsys.readouterr().err
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    assert main(["report", str(broken)]) == 2
    assert "cannot read the archive" in capsys.readouterr().err


# --- the chat's /report -------------------------------------------------------------------------

def test_chat_report_saves_every_answer_of_the_conversation_as_one_page(tmp_path):
    from advisor.chat import session as chat_session

    out: list[str] = []
    chat = chat_session.Chat(out.append, width=lambda: 100)
    chat.handle("/report")
    assert out[-1].startswith("Usage: /report FILE")
    chat.handle(f"/report {tmp_path / 'empty.html'}")
    assert "no answer to save yet" in out[-1] and not (tmp_path / "empty.html").exists()
    chat.handle("Compare all precisions for Qwen2.5-7B on an H200")
    chat.handle("/compare batch sizes for Qwen2.5-7B fp16 on H200")
    chat.handle("/plan LoRA or QLoRA for OLMo-7B on a 24GB GPU")
    titles = [a.title for a in chat.state.answers]
    assert len(titles) == 3
    path = tmp_path / "session.html"
    chat.handle(f"/report {path}")
    assert " ".join(out[-1].split()).startswith(f"Saved 3 answer(s) of this conversation as one HTML page: {path}")
    page = path.read_text()
    for t in titles:
        assert html.escape(t) in page
    drawn = figures(page)
    want = sum(len([c for c in a.charts if c.items]) for a in chat.state.answers) + 1  # + the plan's breakdown
    assert len(drawn) == want and "breakdown" in [k for k, _ in drawn]
    assert_opens(path, want, tmp_path / "session.png")
    chat.handle("/report /no/such/dir/x.html")
    assert out[-1].startswith("Could not write")
