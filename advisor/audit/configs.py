"""Readers for the non-Python files the auditor understands. Each turns text into config nodes
(advisor.audit.nodes) with exact line numbers; a file that does not parse gives a diagnostic.

YAML is read by a small line scanner rather than a YAML library: we need keys, scalar values and
their lines, not a full document model, and the advisor installs without PyYAML.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from typing import Any

from advisor.audit.models import Diagnostic
from advisor.audit.nodes import ConfigEntry, IndexOption, Requirement, ShellCommand, TrainingConfig
from advisor.audit.sources import join_continuations
from advisor.audit.training import TRAINING_KEYS
from advisor.messages.text import msg

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_PIP_OPTS_WITH_VALUE = {"-i": "--index-url", "--index-url": "--index-url", "--extra-index-url": "--extra-index-url",
                        "-f": "--find-links", "--find-links": "--find-links"}
_PIP_SKIP_WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-t", "--target",
                        "--trusted-host", "--cache-dir", "--python", "--root", "--prefix", "--src",
                        "--platform", "--python-version", "--implementation", "--abi", "--log", "-C",
                        "--config-settings", "--progress-bar"}


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    m = re.search(r"\s#", line)
    return line[: m.start()] if m else line


def parse_requirement(raw: str, line: int, origin: str) -> Requirement | None:
    text = raw.strip()
    if not text or text.startswith("-"):
        return None
    url = None
    if " @ " in text or text.startswith(("git+", "http://", "https://", "file:")):
        if " @ " in text:
            name_part, url = text.split(" @ ", 1)
            url = url.split(";")[0].strip()
        else:
            url = text
            m = re.search(r"#egg=([\w.-]+)", text) or re.search(r"/([\w.-]+?)(?:\.git)?(?:@[^/]*)?$", text.split("#")[0])
            name_part = m.group(1) if m else text
        m = _REQ.match(name_part)
        name = m.group(1) if m else name_part.strip()
        return Requirement(name=name.lower(), spec="", line=line, raw=text, origin=origin, url=url)
    m = _REQ.match(text)
    if not m:
        return None
    spec = m.group(3).split(";")[0].strip()
    return Requirement(name=m.group(1).lower().replace("_", "-"), spec=spec, line=line, raw=text, origin=origin)


def read_requirements(text: str, origin: str = "requirements file") -> list[Any]:
    nodes: list[Any] = []
    for line, logical in join_continuations(text):
        body = _strip_comment(logical).strip()
        if not body:
            continue
        if body.startswith("-"):
            nodes.extend(_pip_options(body.split(), line, body, origin))
            continue
        req = parse_requirement(body, line, origin)
        if req is not None:
            nodes.append(req)
    return nodes


def _pip_options(tokens: list[str], line: int, raw: str, origin: str) -> list[IndexOption]:
    out: list[IndexOption] = []
    seen: set[tuple[str, str]] = set()  # `--pre --pre ...` is one option, not one node per token
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        flag, _, inline = tok.partition("=")
        opt: tuple[str, str] | None = None
        if tok == "--pre":
            opt = ("--pre", "")
        elif flag in _PIP_OPTS_WITH_VALUE:
            opt = (_PIP_OPTS_WITH_VALUE[flag], inline or (tokens[i + 1] if i + 1 < len(tokens) else ""))
            i += 0 if inline else 1
        if opt is not None and opt not in seen:
            seen.add(opt)
            out.append(IndexOption(opt[0], opt[1], line, raw, origin))
        i += 1
    return out


# Shell words without shlex's character-at-a-time loop, for very long lines: a quoted run or a run
# of non-blanks (linear: the alternatives start with different characters).
_WORDS = re.compile(r"""'[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+""")
SHLEX_MAX_CHARS = 4096


def shell_words(text: str) -> list[str]:
    if len(text) <= SHLEX_MAX_CHARS:
        try:
            return shlex.split(text, comments=True, posix=True)
        except ValueError:  # unbalanced quotes: fall back to whitespace
            return text.split()
    hash_at = re.search(r"(^|\s)#", text)
    body = text[: hash_at.start()] if hash_at else text
    return [w[1:-1] if w[:1] in "'\"" and len(w) >= 2 else w for w in _WORDS.findall(body)]


def parse_command(text: str, line: int, origin: str) -> list[Any]:
    """Requirements and index options of the pip / uv / conda install commands in a shell line."""
    tokens = shell_words(text)
    out: list[Any] = []
    seen: set[Any] = set()  # a requirement or option repeated on one line is one node

    def add(node: Any) -> None:
        key = (type(node), getattr(node, "flag", None), getattr(node, "value", None), getattr(node, "raw", None)
               if isinstance(node, Requirement) else None)
        if key not in seen:
            seen.add(key)
            out.append(node)

    cmds: list[list[str]] = [[]]
    for tok in tokens:
        if tok in ("&&", "||", ";", "|"):
            cmds.append([])
        elif tok.endswith(";") and len(tok) > 1:
            cmds[-1].append(tok[:-1])
            cmds.append([])
        else:
            cmds[-1].append(tok)
    for cmd in cmds:
        words = [w for w in cmd if w not in ("sudo", "-q", "--quiet", "-U", "--upgrade", "--no-cache-dir")]
        if "install" not in words:
            continue
        i = words.index("install")
        tool = " ".join(words[:i])
        is_pip = bool(re.search(r"(^|[\s/])(pip3?|uv pip|uv)(\s|$)", tool) or "-m pip" in tool or tool.endswith("pip"))
        is_conda = bool(re.search(r"(^|[\s/])(conda|mamba|micromamba)(\s|$)", tool))
        if not (is_pip or is_conda):
            continue
        rest = words[i + 1:]
        j = 0
        while j < len(rest):
            w = rest[j]
            flag, _, inline = w.partition("=")
            if is_conda and w in ("-c", "--channel"):
                if j + 1 < len(rest):
                    add(IndexOption("--channel", rest[j + 1], line, text, origin))
                j += 2
                continue
            if w == "--pre" or w == "--prerelease=allow" or (w == "--prerelease" and rest[j + 1:j + 2] == ["allow"]):
                add(IndexOption("--pre", "", line, text, origin))
                j += 1 if w != "--prerelease" else 2
                continue
            if flag in _PIP_OPTS_WITH_VALUE:
                value = inline or (rest[j + 1] if j + 1 < len(rest) else "")
                add(IndexOption(_PIP_OPTS_WITH_VALUE[flag], value, line, text, origin))
                j += 1 if inline else 2
                continue
            if flag in _PIP_SKIP_WITH_VALUE:
                j += 1 if inline else 2
                continue
            if w.startswith("-"):
                j += 1
                continue
            if is_conda and "::" in w:
                channel, _, pkg = w.partition("::")
                add(IndexOption("--channel", channel, line, text, origin))
                w = pkg
            req = parse_requirement(w.replace("=", "==", 1) if is_conda and "=" in w and "==" not in w else w,
                                    line, origin)
            if req is not None:
                add(req)
            j += 1
    return out


# -- pyproject.toml --------------------------------------------------------------------------------
def _find_line(lines: list[str], needle: str, start: int = 0) -> int:
    for n in range(start, len(lines)):
        if needle in lines[n]:
            return n + 1
    for n in range(0, min(start, len(lines))):
        if needle in lines[n]:
            return n + 1
    return 1


def read_pyproject(text: str, display: str) -> tuple[list[Any], dict[str, Any] | None, list[Diagnostic]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return [], None, [Diagnostic(path=display, level="error", message=str(m := msg("diag.toml", err=str(err))), text=m)]
    lines = text.splitlines()
    nodes: list[Any] = []
    origin = "pyproject.toml"

    def dep(s: Any) -> None:
        if isinstance(s, str):
            ln = _find_line(lines, s)
            r = parse_requirement(s, ln, origin)
            if r is not None:
                nodes.append(r)

    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    for s in project.get("dependencies", []) or []:
        dep(s)
    for group in (project.get("optional-dependencies") or {}).values():
        for s in group if isinstance(group, list) else []:
            dep(s)
    for group in (data.get("dependency-groups") or {}).values():
        for s in group if isinstance(group, list) else []:
            dep(s)
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    poetry = tool.get("poetry") if isinstance(tool.get("poetry"), dict) else {}
    tables = [poetry.get("dependencies") or {}, poetry.get("dev-dependencies") or {}]
    for g in (poetry.get("group") or {}).values():
        if isinstance(g, dict):
            tables.append(g.get("dependencies") or {})
    for table in tables:
        if not isinstance(table, dict):
            continue
        for name, spec in table.items():
            ln = _find_line(lines, name)
            if isinstance(spec, str):
                nodes.append(Requirement(name.lower(), spec.strip(), ln, f"{name} = {spec!r}", origin))
            elif isinstance(spec, dict):
                url = spec.get("url") or spec.get("git")
                nodes.append(Requirement(name.lower(), str(spec.get("version", "")), ln, f"{name} = {spec}", origin,
                                         url=str(url) if url else None))
                if isinstance(spec.get("source"), str):
                    nodes.append(IndexOption("--index-name", spec["source"], ln, f"{name} = {spec}", origin))
    for src_list in (poetry.get("source"), (tool.get("pdm") or {}).get("source") if isinstance(tool.get("pdm"), dict)
                     else None, (tool.get("uv") or {}).get("index") if isinstance(tool.get("uv"), dict) else None):
        for src in src_list or []:
            if isinstance(src, dict) and isinstance(src.get("url"), str):
                nodes.append(IndexOption("--index-url", src["url"], _find_line(lines, src["url"]),
                                         f"index {src.get('name', '')} = {src['url']}", origin))
    uv = tool.get("uv") if isinstance(tool.get("uv"), dict) else {}
    if uv.get("prerelease") == "allow":
        nodes.append(IndexOption("--pre", "", _find_line(lines, "prerelease"), "prerelease = \"allow\"", origin))
    sources_at = _find_line(lines, "[tool.uv.sources]") - 1
    for name, src in (uv.get("sources") or {}).items():
        for s in src if isinstance(src, list) else [src]:
            if isinstance(s, dict) and isinstance(s.get("index"), str):
                nodes.append(IndexOption("--index-name", s["index"], _find_line(lines, f"{name} =", sources_at),
                                         f"{name} = {s}", origin))
    settings = tool.get("ecolobster") if isinstance(tool.get("ecolobster"), dict) else None
    return nodes, settings, []


# -- YAML (line scanner) -------------------------------------------------------------------------
_YAML_KEY = re.compile(r"^(\s*)(-\s+)?([A-Za-z_][\w.\-]*|\"[^\"]+\"|'[^']+')\s*:(?:\s+(.*?)|\s*)$")


def yaml_scalar(raw: str) -> Any:
    s = raw.strip()
    if not s:
        return None
    if s[0] in "\"'" and s[-1:] == s[0] and len(s) >= 2:
        return s[1:-1]
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~"):
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _yaml_strip_comment(line: str) -> str:
    if "#" not in line:
        return line.rstrip()
    out, quote = [], ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def read_yaml(text: str, display: str) -> list[Any]:
    """Training-config entries, conda/pip requirement lists and CI `run:` shell commands."""
    entries: dict[str, ConfigEntry] = {}
    nodes: list[Any] = []
    stack: list[tuple[int, str]] = []  # (indent, key)
    in_deps = -1  # indent of a `dependencies:` / `pip:` list, -1 when outside
    in_channels = -1  # indent of a conda `channels:` list
    block: tuple[int, int] | None = None  # (indent of the run: key, first line) while in a block scalar
    block_lines: list[tuple[int, str]] = []
    lines = text.splitlines()

    def flush_block() -> None:
        for ln, cmd in join_continuations("\n".join(t for _, t in block_lines)):
            first = block_lines[ln - 1][0] if 0 < ln <= len(block_lines) else block_lines[0][0]
            nodes.append(ShellCommand(cmd, first, "CI step"))
        block_lines.clear()

    for n, raw in enumerate(lines, start=1):
        if block is not None:
            indent = len(raw) - len(raw.lstrip())
            if not raw.strip() or indent > block[0]:
                if raw.strip():
                    block_lines.append((n, raw.strip()))
                continue
            flush_block()
            block = None
        line = _yaml_strip_comment(raw)
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if stripped.startswith("- ") and not _YAML_KEY.match(line):
            item = stripped[2:].strip().strip("\"'")
            if in_channels >= 0 and indent >= in_channels:
                nodes.append(IndexOption("--channel", item, n, stripped, "conda environment"))
            elif in_deps >= 0 and indent >= in_deps:
                if "::" in item:
                    channel, _, item = item.partition("::")
                    nodes.append(IndexOption("--channel", channel, n, stripped, "conda environment"))
                if item.startswith("-"):
                    nodes.extend(_pip_options(item.split(), n, item, "conda environment"))
                else:
                    r = parse_requirement(item.replace("=", "==", 1) if "=" in item and "==" not in item
                                          and ">" not in item and "<" not in item else item, n, "conda environment")
                    if r is not None:
                        nodes.append(r)
            continue
        m = _YAML_KEY.match(line)
        if not m:
            continue
        key = m.group(3).strip("\"'")
        value = m.group(4)
        depth = indent + (len(m.group(2)) if m.group(2) else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if in_deps >= 0 and indent < in_deps and key not in ("pip",):
            in_deps = -1
        if in_channels >= 0 and indent <= in_channels:
            in_channels = -1
        if key == "channels" and not value:
            in_channels = indent
        path = ".".join([k for _, k in stack] + [key])
        if key in ("dependencies", "pip") and not value:
            in_deps = indent
        if key == "run" and value is not None:
            if value.strip() in ("|", ">", "|-", ">-", "|+", ">+"):
                block = (indent, n)
                continue
            nodes.append(ShellCommand(value.strip().strip("\"'"), n, "CI step"))
        if value is None or value == "":
            stack.append((depth, key))
            continue
        if path not in entries:
            entries[path] = ConfigEntry(yaml_scalar(value), n)
    if block is not None and block_lines:
        flush_block()
    tc = training_config(entries)
    if tc is not None:
        nodes.append(tc)
    return nodes


def training_config(entries: dict[str, ConfigEntry], flavour: str | None = None) -> TrainingConfig | None:
    top = {k.split(".")[0] for k in entries}
    hits = top & TRAINING_KEYS
    if len(hits) < 2:
        return None
    first = min(e.line for e in entries.values())
    if flavour is not None:
        return TrainingConfig(entries=dict(entries), line=first, flavour=flavour)
    if "zero_optimization" in top or "train_micro_batch_size_per_gpu" in top:
        flavour = "deepspeed"
    elif {"model_class", "peft_config", "dist_config", "kernel_config"} & top:
        return None  # LLaMA-Factory v1 recipes: their own keys and defaults, not read yet (no guessing)
    elif {"micro_batch_size", "base_model", "adapter"} & top:
        flavour = "axolotl"
    elif {"stage", "finetuning_type", "quantization_bit", "template"} & top and "model_name_or_path" in top:
        flavour = "llamafactory"  # LLaMA-Factory recipes: HF TrainingArguments keys plus its own model keys
    else:
        flavour = "hf"
    return TrainingConfig(entries=entries, line=first, flavour=flavour)


# -- JSON ----------------------------------------------------------------------------------------
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def read_json(text: str, display: str) -> tuple[list[Any], list[Diagnostic]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return [], [Diagnostic(path=display, level="error",
                               message=str(m := msg("diag.json", err=err.msg, line=err.lineno, col=err.colno)),
                               text=m, line=err.lineno)]
    except RecursionError:
        return [], [Diagnostic(path=display, level="error", message=str(m := msg("diag.json_deep")), text=m)]
    if not isinstance(data, dict):
        return [], []
    # Key lines in document order: every string followed by ':' is a key.
    key_lines: list[tuple[str, int]] = []
    line_no, counted_to = 1, 0  # lines counted incrementally: one pass over the text, not one per key
    for m in _JSON_STRING.finditer(text):
        rest = text[m.end(): m.end() + 64].lstrip()
        if rest.startswith(":"):
            line_no += text.count("\n", counted_to, m.start())
            counted_to = m.start()
            try:
                key_lines.append((json.loads(m.group(0)), line_no))
            except json.JSONDecodeError:
                continue
    cursor = 0
    entries: dict[str, ConfigEntry] = {}

    def walk(obj: dict, prefix: str, depth: int) -> None:
        nonlocal cursor
        if depth > 8:
            return
        for k, v in obj.items():
            line = 1
            for j in range(cursor, len(key_lines)):
                if key_lines[j][0] == k:
                    line, cursor = key_lines[j][1], j + 1
                    break
            path = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, path + ".", depth + 1)
            elif path not in entries:
                entries[path] = ConfigEntry(v, line)

    walk(data, "", 0)
    tc = training_config(entries)
    return ([tc] if tc is not None else []), []


def read_shell(text: str, dockerfile: bool = False) -> list[Any]:
    nodes: list[Any] = []
    for line, logical in join_continuations(text):
        body = logical.strip()
        if dockerfile:
            if not body.upper().startswith("RUN "):
                continue
            body = body[4:]
        if body and not body.startswith("#"):
            nodes.append(ShellCommand(body, line, "Dockerfile RUN" if dockerfile else "shell script"))
    if not dockerfile:
        nodes.extend(launch_configs(text))
    return nodes


# A command that starts a training script: its `--key value` flags are training arguments.
_LAUNCHER = re.compile(r"(^|[\s/;&|(])(python3?(\.\d+)?|torchrun|accelerate|deepspeed|llamafactory-cli|"
                       r"axolotl|trl|tune|\S+\.py)(\s|$)")
_FLAG = re.compile(r"--([A-Za-z_][\w.-]*)(?:=(\S*))?")
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(\S*)\s*$")
_VAR = re.compile(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")


def launch_configs(text: str) -> list[TrainingConfig]:
    """Training arguments given as command-line flags in a shell script (`python train.py
    --logging_steps 1 --load_in_4bit`), one config per launch command, each flag at its own
    physical line. A script's own defaults are not visible here, so missing keys stay missing."""
    out: list[TrainingConfig] = []
    entries: dict[str, ConfigEntry] = {}
    launching = False
    lines = text.splitlines()
    variables: dict[str, str] = {}  # NAME=value lines before the command: `--lr ${lr}` reads them

    def expand(word: str) -> str:
        return _VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), word)

    def flush() -> None:
        tc = training_config(entries, flavour="cli") if launching else None
        if tc is not None:
            out.append(tc)
        entries.clear()

    for n, raw in enumerate(lines, start=1):
        body = _strip_comment(raw).rstrip()
        cont = body.endswith("\\")
        body = body[:-1] if cont else body
        if not launching:
            a = _ASSIGN.match(body)
            if a:
                variables[a.group(1)] = expand(a.group(2).strip("\"'"))
                continue
        if body.strip() and not launching and _LAUNCHER.search(body):
            launching = True
        if launching:
            words = [expand(w) for w in shell_words(body)] if body.strip() else []
            for i, w in enumerate(words):
                m = _FLAG.fullmatch(w)
                if not m:
                    continue
                key = m.group(1).replace("-", "_")
                if m.group(2) is not None:
                    value: Any = yaml_scalar(m.group(2))
                elif i + 1 < len(words) and not words[i + 1].startswith("--") and words[i + 1] not in ("&&", "||", ";", "|"):
                    value = yaml_scalar(words[i + 1])
                else:
                    value = True  # a store_true switch such as --load_in_4bit
                entries.setdefault(key, ConfigEntry(value, n))
        if not cont:
            flush()
            launching = False
    flush()
    return out
