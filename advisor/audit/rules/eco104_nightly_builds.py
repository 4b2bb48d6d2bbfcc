"""ECO104 nightly-build: nightly or dev builds of the GPU stack pinned for running or measuring.

What it catches
    torch / torchao / torchvision / triton / bitsandbytes / transformers (and friends) pinned to
    `.dev` versions, installed from a nightly index or conda channel, or from a source checkout,
    in requirements files, pyproject.toml, conda environments, Dockerfiles, shell scripts, CI
    steps, notebook `!pip` lines and `subprocess` install commands. Nightly builds can ship
    without their compiled extensions and fall back to slow Python paths silently.

Patterns
    torch==2.12.0.dev20260315+cu128                             # requirements.txt
    --extra-index-url https://<host>/whl/nightly/cu128            # any index URL with /nightly
    !pip install --pre torchao --index-url .../nightly/cu128      # notebook
    conda install -c pytorch-nightly pytorch
    torchao @ git+https://github.com/pytorch/ao                   # a source build is a dev build

Not reported
    Release pins (torch==2.6.0), dev builds of packages outside the GPU stack, `--pre` in a file
    that installs nothing from the GPU stack.

Example
    requirements.txt:3 ECO104 yellow  torch==2.12.0.dev20260315+cu128 pins a nightly/dev build ...

References
    seed 003: the RTX 5090 five-precision study ran nightly torch/torchao; its FP8 rows record the
    nightly torchao's disabled C++ extensions (pytorch/ao#4094).
"""

from __future__ import annotations

import re

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice
from advisor.audit.nodes import IndexOption, Requirement
from advisor.audit.registry import rule
from advisor.messages.text import Msg, msg, word

FIX = "pin a release (e.g. torch==<latest stable>) from the stable index; measure and serve on release builds"
STACK = frozenset({"torch", "torchao", "torchvision", "torchaudio", "triton", "pytorch-triton", "bitsandbytes",
                   "transformers", "accelerate", "peft", "trl", "vllm", "xformers", "flash-attn", "pytorch",
                   "torch-nightly", "torchtune"})
_DEV = re.compile(r"(\.dev\d*|dev\d{6,}|nightly)", re.I)
# Source repositories of the stack, for `pkg @ git+https://...` and bare git URLs.
REPOS = {"pytorch/ao": "torchao", "pytorch/pytorch": "torch", "pytorch/vision": "torchvision",
         "huggingface/transformers": "transformers", "huggingface/peft": "peft", "huggingface/trl": "trl",
         "huggingface/accelerate": "accelerate", "bitsandbytes-foundation/bitsandbytes": "bitsandbytes",
         "timdettmers/bitsandbytes": "bitsandbytes", "vllm-project/vllm": "vllm", "triton-lang/triton": "triton"}
# Pure-Python packages: a source checkout of these has no compiled extensions to lose, so a git
# install is not the trap this rule is about (a dev pin of them still is reported).
PURE_PYTHON = frozenset({"transformers", "peft", "trl", "accelerate", "torchtune"})
_RELEASE_REF = re.compile(r"@v?\d+(\.\d+)+([.-]?post\d+)?(#|$)")
_WORD = re.compile(r"\b(torch|torchao|torchvision|triton|bitsandbytes|vllm|pytorch)\b", re.I)


_INSTALL = re.compile(r"install command \((.+)\)\Z")


def _origin(text: str) -> Msg | str:
    """Where an install line sits ("requirements file", "install command (CI step)") in words."""
    m = _INSTALL.match(text)
    return msg("origin.install", where=word("origin", m.group(1))) if m else word("origin", text)


def _impact(ctx: Context):
    memo = ctx.run.memo
    if "eco104_impact" not in memo:  # the same for every finding of a run: build it once
        memo["eco104_impact"] = _build_impact(ctx)
    return memo["eco104_impact"]


def _stack_named(ctx: Context, text: str) -> bool:
    """Does `text` (an install line, or the whole file) name a GPU-stack package? Whole-file
    searches are done once per file."""
    if text is not ctx.source.text:
        return bool(_WORD.search(text))
    memo = ctx.source.memo
    if "eco104_stack" not in memo:
        memo["eco104_stack"] = bool(_WORD.search(text))
    return memo["eco104_stack"]


def _build_impact(ctx: Context):
    rows = ctx.run.evidence.nightly_rows()
    if not rows:
        return best_practice(msg("finding.eco104_no_rows"))
    versions = sorted({v for r in rows for v in (r.torch_version, r.torchao_version) if v and _DEV.search(v)})
    fp8 = [r for r in rows if r.precision == "fp8"]
    text = msg("finding.eco104_impact", n=len(rows), versions=", ".join(versions))
    return best_practice(text, [r.id for r in fp8] or [r.id for r in rows][:5])


@rule("ECO104", "nightly-build", "Nightly or dev build of the GPU stack", nodes=(Requirement, IndexOption), fix=FIX,
      tokens=[("install",), ("subprocess", "system", "popen")])  # in Python: install commands run from subprocess
def check(ctx: Context):
    n = ctx.node
    if isinstance(n, Requirement):
        name = n.name
        if n.url:
            low = n.url.lower()
            name = next((pkg for repo, pkg in REPOS.items() if repo in low), name)
        if name not in STACK:
            return
        if n.url:
            if "nightly" in n.url.lower() or _DEV.search(n.url.split("/")[-1]):
                why = msg("finding.eco104_wheel", name=name)
            elif ((n.url.startswith("git+") or ".git" in n.url) and not _RELEASE_REF.search(n.url)
                  and name not in PURE_PYTHON):
                why = msg("finding.eco104_git", name=name)
            else:
                return
        elif _DEV.search(n.spec):
            why = msg("finding.eco104_pin", pin=f"{n.name}{n.spec}")
        else:
            return
        yield ctx.hit(n.line, msg("finding.eco104_where", what=why, origin=_origin(n.origin)), severity="yellow", confidence="high", impact=_impact(ctx))
        return
    if isinstance(n, IndexOption):
        if n.flag == "--pre":
            if not _stack_named(ctx, n.raw if "install" in n.raw else ctx.source.text):
                return
            yield ctx.hit(n.line, msg("finding.eco104_pre", origin=_origin(n.origin)),
                          severity="gray", confidence="low", impact=_impact(ctx))
            return
        if "nightly" in n.value.lower():
            key = "finding.eco104_channel" if n.flag == "--channel" else "finding.eco104_index"
            yield ctx.hit(n.line, msg(key, value=n.value, origin=_origin(n.origin)), severity="yellow",
                          confidence="high", impact=_impact(ctx))
