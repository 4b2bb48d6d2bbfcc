"""One language per answer (issue #22): every protocol, asked in English and in Chinese, shows
text in that language only. An English answer has no CJK character; a Chinese answer has no run
of three or more English words. Names (models, GPUs, libraries), units, numbers, identifiers and
code are the same in both languages and do not count as words (see `english_runs`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advisor.answer import Answer
from advisor.api import ask
from advisor.protocols.audit import audit_code
from advisor.query import parse

# questions that walk each protocol's branches (alerts, latency targets, not fitting, no data, ...)
QUESTIONS: dict[str, list[str]] = {
    "optimize": [
        "What's the greenest way to run Mistral-7B on an RTX 4090D for a production API?",
        "optimize Qwen2.5-7B on A800 in NF4 at batch size 1 for production",
        "optimize Qwen2.5-1.5B on RTX 5090 in NF4 at batch size 8",
        "optimize Mistral-7B on A800 with load_in_8bit=True at batch size 16",
        "optimize Qwen2.5-7B on RTX 5090 in FP8 with torchao, 1M requests a month",
        "optimize llama-3-70b on rtx4090d",
        "optimize Mistral-7B on H100 with an inter-token latency target of 5 ms",
        "optimize a 13B model on a T4, 8 hours a day",
        "greenest config for phi-3-mini on rtx 4090d in china, 2 million requests per month",
        "optimize Qwen2.5-0.5B on RTX 5090 at batch size 1 with a nightly torch build",
        "optimize Mistral-7B for interactive chat",
        "optimize Mistral-7B on RTX 4090D, 2 GPUs per replica, vllm",
        "optimize Mistral-7B on A800, p99 latency target 50 ms, end to end under 2 s",
        "Greenest way to serve Llama-3.1-8B to 10 million requests a month on H100s with a 50 ms per-token target",
        "optimize Llama-3.1-8B with vLLM on an A100",
    ],
    "diagnose": [
        "diagnose: my Qwen2.5-7B on RTX 4090D gets 12 tok/s at 300 W in INT8",
        "my Mistral-7B with load_in_8bit=True on an RTX 4090D is slow, 8 tok/s",
        "diagnose: Qwen2.5-1.5B NF4 on RTX 5090 batch 1 in production, 40 tok/s at 150 W",
        "diagnose: Mistral-7B FP16 on A800 at batch size 16 is expensive",
    ],
    "compare": [
        "compare NF4 vs FP16 for Mistral-7B on RTX 4090D",
        "HF generate vs vLLM for Llama-3.1-8B on an H100",
        "compare H100 vs A800 for Qwen2.5-7B",
        "compare batch sizes for Mistral-7B on A800",
        "should I use FP8 on RTX 5090?",
        "why is 4-bit sometimes worse?",
        "compare fp16 vs int8 for llama-3-70b on rtx 4090d",
        "compare H100 vs RTX 4090D for llama-3-70b in FP16",
    ],
    "estimate": [
        "estimate the cost of Mistral-7B on A800 at batch 8, 1M requests per month",
        "estimate 1 million Chinese characters with Yi-6B",
        "estimate Mistral-7B on H100 at batch 1, 50 million requests per month",
        "estimate Qwen2.5-7B on RTX 4090D in NF4 for 8 hours a day",
    ],
    "plan": [
        "LoRA or QLoRA for Qwen2.5-7B on a 24GB GPU, 10000 examples of 512 tokens, budget $20",
        "fine-tune OLMo-7B with LoRA on an RTX 4090",
        "full fine-tuning of Llama-3-70B on an RTX 4090",
        "QLoRA fine-tune Qwen2.5-0.5B on H100, 3 epochs",
        "LoRA or QLoRA for Qwen2.5-7B, budget $0.01",
    ],
    "audit": ["audit my code"],
}
# code the auditor reads in both languages: several rules fire, one finding is silenced
AUDITED = (
    "from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TrainingArguments\n"
    "m = AutoModelForCausalLM.from_pretrained('Qwen/Qwen2.5-0.5B', load_in_4bit=True)\n"
    "q = AutoModelForCausalLM.from_pretrained('mistralai/Mistral-7B-v0.1', load_in_8bit=True)\n"
    "out = m.generate(x, use_cache=False)\n"
    "for p in prompts:\n    m.generate(tok(p, return_tensors='pt').input_ids)\n"
    "args = TrainingArguments(output_dir='o', save_steps=1, per_device_train_batch_size=1)  # eco: ignore ECO201\n"
)

CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]")
# lowercase names and units that read the same in both languages
NAMES = {"torchao", "bitsandbytes", "transformers", "peft", "accelerate", "vllm", "sglang", "eager", "tok", "ms",
         "kwh", "gco2", "kgco2", "km", "gb", "pue", "ecolobster", "axolotl", "unsloth", "trl", "deepspeed"}
_WORD = re.compile(r"^[A-Za-z][a-z]+$")  # a plain word: letters only, at most an initial capital
_STRIP = "\"'.,;:!?()[]{}<>*`"


def english_runs(text: str, n: int = 3) -> list[str]:
    """The longest runs of `n` or more consecutive English words in `text` outside code spans.
    Tokens that are not plain words (FP16, A800, BS=32, tok/s, load_in_8bit, Mistral-7B, NVIDIA,
    GeForce, numbers) neither count nor break a run; a CJK character ends it."""
    text = re.sub(r"`[^`]*`|“[^”]*”", " ", text)  # code, and the user's own words quoted
    found = []
    for seg in CJK.split(text):
        run = [w for w in (tok.strip(_STRIP) for tok in seg.split())
               if (_WORD.match(w) and w.lower() not in NAMES) or re.fullmatch(r"[A-Za-z][a-z]+(['-][a-z]+)+", w)]
        if len(run) >= n:
            found.append(" ".join(run))
    return found


def texts(a: Answer) -> list[tuple[str, str]]:
    """Every piece of text an answer shows, with where it is (code and citations excepted: code
    is code, and a citation quotes its source document as written)."""
    out = [("title", a.title), ("headline", a.headline)]
    out += [("voice", v) for v in a.voice]
    for al in a.alerts:
        out += [("alert.title", al.title), ("alert.message", al.message), ("alert.fix", al.fix or "")]
    out += [("error", x) for x in a.errors] + [("warning", x) for x in a.warnings]
    out += [("not_understood", x) for x in a.not_understood] + [("default", x) for x in a.defaults_applied]
    for tb in a.tables:
        out += [("table.title", tb.title)] + [("table.column", x) for x in tb.columns]
        out += [("table.cell", x) for r in tb.rows for x in r if isinstance(x, str)]
        out += [("table.note", x) for x in tb.notes]
    for ch in a.charts:
        out += [("chart.title", ch.title), ("chart.metric", ch.metric)]
        out += [("chart.bar", f"{b.label} {b.annotation}") for b in ch.items]
    for r in a.recommendations:
        out += [("rec.title", r.title), ("rec.detail", r.detail), ("rec.impact", r.impact or "")]
    out += [("cost", f"{c.label}; {c.basis}") for c in a.costs]
    out += [("conversion", x) for x in a.conversions] + [("caveat", x) for x in a.caveats]
    for p in a.provenance:
        out += [("provenance.method", p.method), ("provenance.note", p.note)]
    return [(k, v) for k, v in out if v]


def _gaps(a: Answer, question: str | None) -> list[str]:
    """Text worded as the user wrote it, removed before the check: the workload as the user worded
    it is a quotation, not the answer's text."""
    out: list[str] = []
    if question is not None and a.protocol != "error":
        q = parse(question, lang=a.lang)
        out += [q.workload or ""]
    return sorted({x for x in out if x}, key=len, reverse=True)


def _cases() -> list[tuple[str, str]]:
    return [(p, q) for p, qs in QUESTIONS.items() for q in qs]


def _no_chinese(a: Answer, question: str = "") -> list[tuple[str, str]]:
    """Text with CJK characters, the user's own words quoted back ("100 万字") aside."""
    return [(k, v) for k, v in texts(a) if any(run not in question for run in re.findall(CJK.pattern + "+", v))]


def _english_sentences(a: Answer, question: str | None) -> list[tuple[str, list[str]]]:
    gaps = _gaps(a, question)
    bad = []
    for k, v in texts(a):
        for g in gaps:
            v = v.replace(g, " ")
        runs = english_runs(v)
        if runs:
            bad.append((k, runs))
    return bad


@pytest.mark.parametrize(("protocol", "question"), _cases())
def test_english_answer_has_no_chinese(protocol, question):
    a, _ = ask(question, lang="en")
    assert a.protocol == protocol and a.lang == "en"
    assert _no_chinese(a) == []


@pytest.mark.parametrize(("protocol", "question"), _cases())
def test_chinese_answer_has_no_english_sentence(protocol, question):
    a, _ = ask(question, lang="zh")
    assert a.protocol == protocol and a.lang == "zh"
    assert _english_sentences(a, question) == []


def test_every_question_of_the_corpus_answers_in_one_language():
    # the parser corpus (327 questions as users write them, English and Chinese) asked in both languages
    import yaml

    corpus = Path(__file__).parent / "data" / "questions.yaml"
    questions = [e["q"] for e in yaml.safe_load(corpus.read_text(encoding="utf-8"))]
    bad = []
    for q in questions:
        en, _ = ask(q, lang="en")
        zh, _ = ask(q, lang="zh")
        bad += [("en", q, x) for x in _no_chinese(en, q)] + [("zh", q, x) for x in _english_sentences(zh, q)]
    assert len(questions) > 300 and bad == []


def test_every_protocol_is_walked():
    assert set(QUESTIONS) == {"optimize", "diagnose", "compare", "estimate", "plan", "audit"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_auditors_findings_follow_the_language(lang):
    a = audit_code(AUDITED, filename="job.py", lang=lang)
    assert a.lang == lang and len(a.alerts) >= 3 and a.caveats
    if lang == "en":
        assert _no_chinese(a) == []
    else:
        assert _english_sentences(a, None) == []
        assert all(CJK.search(al.title) and CJK.search(al.fix or "") for al in a.alerts)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("question", ["optimize", "optimize Mistral-7B on GTX 1080", "optimize Mistral-7B on A800 at batch size 0",
                                      "", "optimize Mistral-7B on A800 at batch sizes 1, 8",
                                      "optimize Mistral-7B on 2x A800 and 4x A800", "optimize a 900000B model"])
def test_an_unusable_question_answers_in_its_language(lang, question):
    # the title, the voice and the parser's errors (what was wrong, what is accepted)
    a, _ = ask(question, lang=lang)
    assert a.protocol == "error" and a.lang == lang and a.errors
    if lang == "en":
        assert _no_chinese(a) == []
    else:
        assert _english_sentences(a, None) == [] and all(CJK.search(e) for e in a.errors)


def test_the_checker_finds_english_and_lets_names_pass():
    assert english_runs("用 FP16，批大小 32：214 J/1k tok（NVIDIA GeForce RTX 4090 D，Mistral-7B-Instruct-v0.2）") == []
    assert english_runs("load_in_8bit 但没有设置 llm_int8_threshold=0.0，改用 vLLM/SGLang 配合 torch.compile") == []
    assert english_runs("数据：外推（scaled to BS=32 by the batch power law）") == ["scaled to by the batch power law"]
    assert english_runs("每月 the replica's load 结束 ok then") == ["the replica's load"]
    assert english_runs("`code with many english words` 中文") == []


# the auditor's own words: finding messages, reasons a value cannot be read, impacts, diagnostics
AUDIT_AREAS = ("finding", "why", "impact", "diag", "trap", "owner", "origin", "bind_note", "basis", "library")
CORPUS = Path(__file__).parent / "corpus" / "audit"


def test_every_auditor_message_reads_in_chinese():
    # each template with its fields filled by a placeholder: code, names and numbers aside, no
    # English sentence (the fields in code spans stay code)
    from advisor.messages import catalog
    from advisor.messages.text import Msg

    zh = catalog("zh")
    keys = [k for k in zh if k.split(".")[0] in AUDIT_AREAS]
    assert len(keys) > 150
    bad = {}
    for k in keys:
        fields = {f: "x1" for _, f, _, _ in __import__("string").Formatter().parse(zh[k]) if f}
        runs = english_runs(Msg(key=k, fields=fields).render("zh"))
        if runs:
            bad[k] = runs
    assert bad == {}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_audit_corpus_answers_in_its_language(lang):
    # every rule fires somewhere in the corpus (servers, notebooks, configs, install lines, broken
    # files), and the answer's findings, fixes, impacts and diagnostics are in one language
    from advisor.audit import all_rules
    from advisor.protocols.audit import audit_paths

    a = audit_paths([str(CORPUS)], lang=lang)
    assert {f["code"] for f in a.extra["findings"]} == set(all_rules()) and a.warnings
    if lang == "en":
        assert _no_chinese(a) == []
    else:
        assert _english_sentences(a, None) == []
        assert all(CJK.search(al.message) for al in a.alerts)


def test_the_auditor_check_finds_an_english_finding(monkeypatch):
    # the check can fail: a finding worded in English in a Chinese answer is found
    from advisor.messages import catalog

    monkeypatch.setitem(catalog("zh"), "finding.eco106_kwarg", catalog("en")["finding.eco106_kwarg"])
    a = audit_code(AUDITED, filename="job.py", lang="zh")
    assert ("alert.message", ["in generate disables the cache"]) in _english_sentences(a, None)


def test_the_audit_command_answers_in_chinese(tmp_path, capsys):
    from advisor.cli import main

    f = tmp_path / "job.py"
    f.write_text(AUDITED, encoding="utf-8")
    rc = main(["audit", "--lang", "zh", "--no-cache", "--format", "markdown", str(f)])
    out = capsys.readouterr().out
    assert rc == 1 and "关闭了 KV 缓存" in out and "disables the KV cache" not in out


# named fields with every kind of bad value (ecolobster estimate/optimize flags, the MCP tools' arguments)
BAD_FIELDS = [
    dict(model="foo", gpu="gtx1080", precision="int4", quantization="nf5", batch_size=0, region="marsx"),
    dict(model="Mistral-7B", precision="int8", prompt_tokens=1.5, gen_tokens="many", pue=0.5, hours_per_day=30),
    dict(model="", requests_per_month=1e6, requests_per_day=10, use_case="gaming", own_gpus="maybe",
         gpu_lifetime_years=99, lang="zh"),
    dict(model="Mistral-7B", precision="fp16", quantization="int8_pure", compare_frameworks=["hf-eager"],
         compare_gpus=["gtx1080"], reported_tok_s=-1, colour="red"),
    dict(model_params_b=-3, framework="vlm", itl_target_ms=float("inf")),
]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("fields", BAD_FIELDS)
def test_structured_input_errors_follow_the_language(lang, fields):
    from advisor.query import QueryError, from_fields

    with pytest.raises(QueryError) as err:
        from_fields("estimate", **{**fields, "lang": lang})
    errors = err.value.errors
    assert len(errors) >= 2
    if lang == "en":
        assert [e for e in errors if CJK.search(e)] == []
    else:
        assert [(e, english_runs(e)) for e in errors if english_runs(e)] == [] and all(CJK.search(e) for e in errors)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_serving_flags_errors_follow_the_language(lang):
    from advisor.query import QueryError, flags_context

    with pytest.raises(QueryError) as err:
        flags_context("vlm", 0, -5, 120, lang=lang)
    assert len(err.value.errors) == 4
    if lang == "zh":
        assert all(CJK.search(e) and not english_runs(e) for e in err.value.errors)
    else:
        assert not any(CJK.search(e) for e in err.value.errors)


def test_the_structured_workload_and_conversions_follow_the_language():
    from advisor.query import from_fields

    q = from_fields("estimate", model="Mistral-7B", gpu="a800", users_per_day=500, lang="zh")
    assert CJK.search(q.workload or "") and all(CJK.search(c) and not english_runs(c) for c in q.conversions)
    en = from_fields("estimate", model="Mistral-7B", gpu="a800", chinese_characters=1e6)
    assert "Chinese characters" in (en.workload or "") and not any(CJK.search(c) for c in en.conversions)


def test_rendered_provenance_and_defaults_are_worded_in_chinese():
    # the values the renderers show as words (tier, confidence) and the defaulted slots' names
    from advisor.render import render

    a, _ = ask("我想在RTX 5090上部署Qwen2.5-3B，最省电的配置是什么？")
    assert a.lang == "zh" and a.provenance and a.defaults_applied
    md = render(a, "markdown")
    rows = [ln for ln in md.splitlines() if ln.startswith("| rtx5090 /")]
    assert rows and all("外推" in r or "实测" in r for r in rows)
    assert not any(w in r for r in rows for w in ("| extrapolated |", "| measured |", "| low |", "| medium |"))
    assert all(CJK.match(d) for d in a.defaults_applied if not d.startswith(("工作量", "workload")))
    rich = render(a, "rich")
    assert "extrapolated (" not in rich and "measured (" not in rich
