"""The trigger-token prefilter: files whose code holds none of a rule's tokens skip that rule
(and the parse when no rule is left), and that changes no finding."""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path

import pytest

from advisor.audit import Auditor, AuditSettings, all_rules
from advisor.audit.prefilter import Prefilter, code_text, has_word, normalize_tokens
from advisor.audit.registry import Rule

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus" / "audit"


def _snippets() -> list[str]:
    """Every multi-line string in the audit tests that parses as Python: the rules' own
    examples (new rules' tests join in by themselves)."""
    out: list[str] = []
    for test in sorted(ROOT.glob("test_audit*.py")):
        for node in ast.walk(ast.parse(test.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.count("\n") >= 1:
                text = textwrap.dedent(node.value)
                try:
                    ast.parse(text)
                except (SyntaxError, ValueError):
                    continue
                out.append(text)
    return out


def _key(report):
    return ([(f.path, f.line, f.col, f.cell, f.code, f.severity, f.confidence, f.message) for f in report.findings],
            [(f.path, f.line, f.code) for f in report.suppressed_findings],
            [(d.path, d.line, d.message) for d in report.unused_suppressions])


def test_the_prefilter_changes_no_finding(tmp_path):
    snippets = _snippets()
    assert len(snippets) > 40  # the audit tests' examples, plus the corpus below
    for i, text in enumerate(snippets):
        (tmp_path / f"snippet_{i:04d}.py").write_text(text, encoding="utf-8")
    shutil.copytree(CORPUS, tmp_path / "corpus")
    on, off = Auditor(AuditSettings()), Auditor(AuditSettings(), prefilter=False)
    with_filter = on.audit_paths([str(tmp_path)])
    without = off.audit_paths([str(tmp_path)])
    assert _key(with_filter) == _key(without)
    assert len(with_filter.findings) > 40
    assert with_filter.files_scanned == without.files_scanned
    assert on.files_parsed < off.files_parsed  # some files really were skipped


def test_every_rule_reports_under_the_prefilter():
    """The corpus has findings of (nearly) every rule; none is lost to its own tokens."""
    report = Auditor(AuditSettings()).audit_paths([str(CORPUS)])
    codes = {f.code for f in report.findings}
    assert len(codes) >= 10


def test_docstrings_and_comments_hold_no_trigger():
    pf = Prefilter(list(all_rules().values()))
    doc_only = '''"""Load with AutoModel.from_pretrained(mid, device_map="auto")."""
# model.generate(**ids, use_cache=False)
def f(x):
    """Example: pipeline("text-generation", device=0)"""
    return x + 1
'''
    assert "ECO107" not in pf.rules_for(doc_only)
    assert not pf.rules_for(doc_only) - pf.always
    in_code = doc_only + 'm = AutoModel.from_pretrained("gpt2").to("cuda")\n'
    assert "ECO107" in pf.rules_for(in_code)


def test_code_text_keeps_every_string_that_is_not_a_statement():
    src = '''x = """pip install torch"""
foo(
    """load_in_8bit"""
)
y = ["a"
     "use_cache"]
"""doc""".format(1)
z = 1 + \\
    """float32"""
f"{model.generate(x)}"
"""docstring"""  # with a comment
'''
    code = code_text(src)
    for kept in ("pip install torch", "load_in_8bit", "use_cache", '"""doc""".format', "float32", "model.generate"):
        assert kept in code, kept
    assert "docstring" not in code and "with a comment" not in code


def test_code_text_reads_strings_as_the_tokenizer_does():
    src = "s = '# not a comment'  # dropped\nt = \"it's\"  # gone\nu = r'\\'' + '''a ' b'''\n"
    code = code_text(src)
    assert "# not a comment" in code and "it's" in code and "dropped" not in code and "gone" not in code
    assert code_text("x = 1\n'''unterminated\nfrom_pretrained") .strip() == "x = 1"  # runs to the end: not code
    assert code_text("x = 1\r\n'''doc'''\r\ny = 2\r\n").split() == ["x", "=", "1", "y", "=", "2"]


def test_words_match_whole_identifiers_prefixes_and_substrings():
    assert has_word("model.train()", "train")
    assert not has_word("self.training = True", "train")
    assert has_word('x.to("cuda:0")', "cuda*") and not has_word("nocuda", "cuda*")
    assert has_word("e4m3_fp8 = 1", "*fp8*") and not has_word("e4m3_fp8 = 1", "fp8")
    assert has_word("train", "train") and has_word("x=train", "train")


def test_tokens_ignore_case_and_read_identifiers_as_python_does():
    pf = Prefilter(list(all_rules().values()))
    assert "ECO101" in pf.rules_for("c = BITSANDBYTESCONFIG(LOAD_IN_8BIT=True)\n")
    # Python reads identifiers NFKC-normalised: full-width letters spell the same name.
    assert "ECO106" in pf.rules_for("model.ｇｅｎｅｒａｔｅ(**ids, ｕｓｅ_ｃａｃｈｅ=False)\n")


def test_a_skipped_file_still_reports_its_unused_suppressions(tmp_path):
    p = tmp_path / "util.py"
    p.write_text("def add(a, b):\n    return a + b  # eco: ignore[ECO101]\n", encoding="utf-8")
    auditor = Auditor(AuditSettings())
    report = auditor.audit_paths([str(p)])
    assert auditor.files_parsed == 0
    assert report.files_scanned == 1 and not report.nothing_audited
    assert [d.line for d in report.unused_suppressions] == [2]


def test_token_declarations_are_checked():
    assert normalize_tokens(None) is None
    assert normalize_tokens(["a", "b"]) == (("a", "b"),)
    assert normalize_tokens([("a",), ("b", "c*")]) == (("a",), ("b", "c*"))
    for bad in ([], [()], ["has space"], ["*half"], [("a", 1)]):
        with pytest.raises(ValueError):
            normalize_tokens(bad)  # type: ignore[arg-type]


def test_a_rule_without_tokens_sees_every_file():
    def check(ctx):  # noqa: ANN001, ANN202
        return ()

    free = Rule(code="ECO999", name="x", title="x", nodes=(ast.Call,), check=check, doc="", fix="")
    pf = Prefilter([free, *all_rules().values()])
    assert pf.rules_for("x = 1\n") == {"ECO999"}
