"""The message catalog (advisor/messages): both languages hold the same keys with the same fields,
every key the code names exists, and the templates format."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from advisor import messages
from advisor.messages import For, catalog, t

ROOT = Path(__file__).resolve().parent.parent


def _fields(template: str) -> set[str]:
    return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f}


def test_both_languages_have_the_same_keys():
    en, zh = catalog("en"), catalog("zh")
    assert len(en) > 150
    assert sorted(set(en) - set(zh)) == [] and sorted(set(zh) - set(en)) == []


def test_every_key_has_the_same_fields_in_both_languages():
    en, zh = catalog("en"), catalog("zh")
    assert [k for k in en if _fields(en[k]) != _fields(zh[k])] == []


@pytest.mark.parametrize("lang", messages.LANGS)
def test_every_template_formats(lang):
    for key, tmpl in catalog(lang).items():
        values = dict.fromkeys(_fields(tmpl), 1.5)
        assert isinstance(tmpl.format(**values), str), key


def test_no_chinese_in_english_and_words_in_chinese():
    import re

    cjk = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
    assert [k for k, v in catalog("en").items() if cjk.search(v)] == []
    # a Chinese template is Chinese unless it is a name, a unit or code (the same in both)
    en = catalog("en")
    same = [k for k, v in catalog("zh").items() if v == en[k] and re.search(r"[a-z]{4,} [a-z]{3,}", v)]
    assert same == []


def _keys_named_in_code() -> list[tuple[str, int, str]]:
    """Literal keys passed to t(lang, "key"), For(...)("key") or m("key") in advisor/."""
    out = []
    for path in (ROOT / "advisor").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")
            args = node.args
            if name == "t" and len(args) >= 2:
                key = args[1]
            elif name in ("m", "msg") or (isinstance(f, ast.Call) and getattr(f.func, "id", "") == "For"):
                key = args[0]
            else:
                continue
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and "." in key.value:
                out.append((str(path.relative_to(ROOT)), node.lineno, key.value))
    return out


def test_every_key_named_in_code_exists():
    named = _keys_named_in_code()
    assert len(named) > 100
    en = catalog("en")
    assert [n for n in named if n[2] not in en] == []


def test_lookup_falls_back_to_english_and_fills_fields():
    assert t("fr", "word.current") == "current"
    assert t("zh", "word.current") == "当前"
    assert t(None, "optimize.title", model="M", gpu="G") == "Greenest configuration: M on G"
    m = For("zh")
    assert m.lang == "zh" and m.word("tier", "measured") == "实测" and m.word("tier", "unknown-x") == "unknown-x"
    assert m.join(["a", "b"]) == "a、b"
    with pytest.raises(KeyError):
        t("en", "no.such.key")


def test_every_auditor_rule_has_its_title_and_fix_in_both_languages():
    # a new rule adds [rule.ECOnnn] title and fix to en.toml (as registered) and zh.toml
    from advisor.audit import all_rules

    en = catalog("en")
    for r in all_rules().values():
        assert en.get(f"rule.{r.code}.title") == r.title, r.code
        assert en.get(f"rule.{r.code}.fix") == r.fix, r.code


def test_derivations_are_read_back_into_chinese_and_unknown_text_stays():
    from advisor.messages.derivation import derivation_text

    en = ("measured at BS=1; scaled to BS=32 by the batch power law J/1k tok ~ BS^-0.93, least squares on 94 rows "
          "of all GPUs and precisions (BS 1,2,4,8,16,32,64), refitted around each of 5 steps")
    zh = derivation_text(en, "zh")
    assert zh.startswith("在 BS=1 实测；用批大小幂律 J/1k tok ~ BS^-0.93（在所有显卡和精度的 94 行数据上最小二乘拟合")
    assert "BS=32" in zh and "5 个步长" in zh and "least" not in zh
    assert derivation_text(en, "en") == en
    assert derivation_text("a wording no template has", "zh") == "a wording no template has"
