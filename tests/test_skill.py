"""skill.md is what an agent that never saw EcoLobster reads first: its front matter must satisfy
the Agent Skills format and the registries' metadata, and every command it shows must exist with
the flags it shows (checked against the real argparse parser, not a copy of it)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import typing
from pathlib import Path

import pytest
import yaml

from advisor.answer import MOOD_THRESHOLDS, Answer, Tier
from advisor.cli import build_parser
from advisor.mcp import tools as mcp_tools

REPO = Path(__file__).resolve().parents[1]
SKILL = REPO / "skill.md"
ISSUE_COMMANDS = ("ask", "optimize", "compare", "estimate", "diagnose", "audit", "plan")
# Registries act on these install kinds only (OpenClaw's skill spec); others are silently dropped.
OPENCLAW_INSTALL_KINDS = {"brew", "node", "go", "uv", "download"}


def split_skill(text: str) -> tuple[dict, str]:
    m = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    assert m, "skill.md must start with YAML front matter between --- lines"
    front = yaml.safe_load(m.group(1))
    assert isinstance(front, dict)
    return front, m.group(2)


@pytest.fixture(scope="module")
def skill() -> tuple[dict, str]:
    return split_skill(SKILL.read_text(encoding="utf-8"))


def code_blocks(body: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", body, re.S)


def command_lines(body: str) -> list[list[str]]:
    """Each `ecolobster ...` command in the fenced code blocks, as argv (comments dropped)."""
    out = []
    for block in code_blocks(body):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("ecolobster"):
                out.append(shlex.split(line, comments=True)[1:])
    return out


def inline_commands(body: str) -> list[str]:
    return re.findall(r"`(ecolobster(?: [^`]*)?)`", body)


def subparsers() -> dict[str, typing.Any]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


# ---------------------------------------------------------------- front matter


def test_front_matter_follows_the_agent_skills_format(skill):
    front, _ = skill
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", front["name"]) and len(front["name"]) <= 64
    assert front["name"] == "ecolobster"
    desc = front["description"]
    assert 100 <= len(desc) <= 1024
    assert "Use it whenever" in desc  # says when to use it, not only what it is
    for trigger in ("precision", "GPU", "batch size", "LoRA", "kWh", "CO2", "slow", "code"):
        assert trigger in desc, trigger
    assert len(front["compatibility"]) <= 500
    assert set(front) <= {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}


def test_metadata_declares_required_and_optional_binaries(skill):
    front, _ = skill
    openclaw = front["metadata"]["openclaw"]
    assert openclaw["requires"]["bins"] == ["ecolobster"]
    assert set(openclaw["requires"]) <= {"bins", "anyBins", "env", "config"}
    assert front["metadata"]["optional"]["bins"] == ["nvidia-smi"]
    assert "nvidia-smi" not in openclaw["requires"]["bins"]  # benchmarking is optional
    for inst in openclaw["install"]:
        assert inst["kind"] in OPENCLAW_INSTALL_KINDS
        assert inst["package"] == "ecolobster" and inst["bins"] == ["ecolobster"]


# ---------------------------------------------------------------- commands


def test_every_command_in_the_code_blocks_parses(skill):
    _, body = skill
    lines = command_lines(body)
    assert len(lines) >= 10
    for argv in lines:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse's way of saying no (or, with 0, of --version/--help done)
            if exc.code != 0:
                pytest.fail(f"skill.md shows `ecolobster {shlex.join(argv)}`, which the CLI refuses (exit {exc.code})")
            continue
        if argv and not argv[0].startswith("-"):
            assert getattr(args, "handler", None), f"`ecolobster {shlex.join(argv)}` runs nothing"


def test_inline_commands_exist_with_their_flags(skill):
    _, body = skill
    subs = subparsers()
    mentioned = inline_commands(body)
    assert mentioned
    for cmd in mentioned:
        argv = cmd.split()[1:]
        if not argv or argv[0].startswith("-"):
            continue
        assert argv[0] in subs, f"skill.md names `{cmd}`, but there is no command '{argv[0]}'"
        sp = subs[argv[0]]
        if len(argv) > 1 and argv[1] in getattr(_nested(sp), "choices", {}):
            sp = _nested(sp).choices[argv[1]]
        for flag in (a for a in argv if a.startswith("--")):
            assert flag in sp._option_string_actions, f"`{cmd}`: '{argv[0]}' has no option {flag}"


def _nested(sp):
    return next((a for a in sp._actions if a.__class__.__name__ == "_SubParsersAction"), None)


def test_shared_flags_exist_on_every_structured_command(skill):
    _, body = skill
    para = next(p for p in body.split("\n\n") if p.startswith("The structured commands share these flags"))
    flags = set(re.findall(r"`(--[a-z-]+)", para))
    assert {"--model", "--gpu", "--precision", "--region", "--format"} <= flags
    subs = subparsers()
    for name in ("optimize", "compare", "estimate", "diagnose"):
        missing = flags - set(subs[name]._option_string_actions)
        assert not missing, f"`ecolobster {name}` lacks {missing}"


def test_names_every_question_command_and_shows_json(skill):
    _, body = skill
    subs = subparsers()
    for name in ISSUE_COMMANDS:
        assert name in subs, f"the CLI lacks '{name}'"
        assert f"`ecolobster {name}" in body, f"skill.md never shows `ecolobster {name}`"
    assert "--format json" in body and "--format markdown" in body
    json_lines = [a for a in command_lines(body) if "--format" in a]
    assert {a[0] for a in json_lines} >= {"ask", "audit", "data"}


def test_mcp_tools_listed_match_the_server(skill):
    _, body = skill
    section = body[body.index("## The MCP server"):]
    listed = set(re.findall(r"`([a-z_]+)`", section.split("\n\n")[1]))
    tools = {s.name for s in mcp_tools.tool_specs(include_benchmark=True)}
    assert tools <= listed, f"skill.md does not list {tools - listed}"


# ---------------------------------------------------------------- reading the answer


def test_json_fields_it_explains_exist(skill):
    _, body = skill
    section = body[body.index("## Reading the JSON answer"):body.index("## The rule")]
    named = set(re.findall(r"`([a-z_]+)`", section))
    fields = set(Answer.model_fields)
    for sub in ("Alert", "Table", "CostLine", "Provenance", "Citation", "Recommendation"):
        fields |= set(getattr(__import__("advisor.answer", fromlist=[sub]), sub).model_fields)
    tiers = set(typing.get_args(Tier))
    moods = {"green", "yellow", "orange", "red", "gray"}
    unknown = named - fields - tiers - moods
    assert not unknown, f"skill.md explains fields the Answer does not have: {unknown}"
    for must in ("mood", "alerts", "tables", "provenance", "citations", "costs", "errors", "defaults_applied"):
        assert must in named or must in body, must
    assert tiers <= named, f"skill.md does not explain tiers {tiers - named}"


def test_mood_thresholds_match_the_code(skill):
    _, body = skill
    line = next(p for p in body.split("\n\n") if "`green` under" in p)
    bounds = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)%", line)]
    code = [b for b, _ in MOOD_THRESHOLDS]
    # "under 5%, 5 to 30%, 30 to 100%, over 100%": every bound of the code, in order
    assert sorted(set(bounds)) == code


def test_states_the_provenance_rule(skill):
    _, body = skill
    rule = body[body.index("## The rule"):]
    assert "must appear in the tool's output" in rule
    assert "simulated" in rule and "never" in rule.lower()
    assert "references/" in body and (REPO / "references").is_dir()


def test_no_seed_text_copied(skill):
    """The same check as the reference documents: no 12-word run shared with a seed."""
    text = SKILL.read_text(encoding="utf-8")
    words = re.sub(r"[^\w\s]", "", text.lower()).split()
    runs = {" ".join(words[i:i + 12]) for i in range(len(words) - 11)}
    sources = 0
    fp = REPO / "tests" / "data" / "seed_12gram_fingerprint.bin"
    if fp.exists():
        sources += 1
        data = fp.read_bytes()
        known = {data[i:i + 6] for i in range(0, len(data), 6)}
        hits = [r for r in runs if hashlib.blake2b(r.encode(), digest_size=6).digest() in known]
        assert not hits, f"skill.md shares 12-word runs with a seed: {hits[:3]}"
    seeds = Path(os.environ.get("ECOLOBSTER_SEEDS_DIR") or REPO.parent / "shared" / "seeds")
    if seeds.is_dir():
        for p in seeds.glob("[0-9]*.txt"):
            sources += 1
            w = re.sub(r"[^\w\s]", "", p.read_text(encoding="utf-8").lower()).split()
            seed_runs = {" ".join(w[i:i + 12]) for i in range(len(w) - 11)}
            assert not runs & seed_runs, f"skill.md copies from {p.name}: {sorted(runs & seed_runs)[:2]}"
    assert sources, "neither the seed fingerprint nor the seeds are available to check against"


def test_checker_rejects_a_wrong_command():
    """The parse check has teeth: a flag the CLI lacks fails."""
    body = "```bash\necolobster data list --colour green\n```\n"
    (argv,) = command_lines(body)
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
