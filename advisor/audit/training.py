"""Training arguments as the fine-tuning rules read them, from a Python call
(`TrainingArguments(...)`, TRL's `SFTConfig(...)`) or from a YAML/JSON config, behind one
interface: `spec.get("save_steps")` -> Arg (present / missing / maybe) with its value and line.

Library defaults matter (a missing `save_steps` means 500 in transformers); they are library
facts named with the library, not energy figures.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from advisor.audit.context import MISSING, Arg, Context, Val
from advisor.audit.nodes import TrainingConfig
from advisor.messages.text import Msg, msg, word

# transformers.TrainingArguments and subclasses; TRL's configs subclass it with other defaults.
HF_ARG_CLASSES = frozenset({"TrainingArguments", "Seq2SeqTrainingArguments", "UnslothTrainingArguments"})
TRL_ARG_CLASSES = frozenset({
    "SFTConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "CPOConfig", "GRPOConfig", "RewardConfig",
    "GKDConfig", "RLOOConfig", "OnlineDPOConfig", "PPOConfig", "BCOConfig", "PRMConfig", "NashMDConfig",
    "XPOConfig",
})
# axolotl configs built in Python (its notebooks): DictDefault(base_model=..., micro_batch_size=...)
AXOLOTL_ARG_CALLS = frozenset({"DictDefault"})
TRAINING_ARG_CALLS = HF_ARG_CLASSES | TRL_ARG_CLASSES | AXOLOTL_ARG_CALLS
TRAINER_CLASSES = frozenset({"Trainer", "Seq2SeqTrainer", "SFTTrainer", "DPOTrainer", "ORPOTrainer", "KTOTrainer",
                             "CPOTrainer", "GRPOTrainer", "RewardTrainer", "PPOTrainer", "UnslothTrainer"})

# canonical key -> spellings (HF, axolotl, DeepSpeed)
ALIASES: dict[str, tuple[str, ...]] = {
    "per_device_train_batch_size": ("per_device_train_batch_size", "micro_batch_size",
                                    "train_micro_batch_size_per_gpu"),
    "gradient_accumulation_steps": ("gradient_accumulation_steps",),
    "save_steps": ("save_steps",),
    "save_strategy": ("save_strategy",),
    "saves_per_epoch": ("saves_per_epoch",),
    "eval_steps": ("eval_steps",),
    "eval_strategy": ("eval_strategy", "evaluation_strategy"),
    "logging_steps": ("logging_steps", "steps_per_print"),
    "logging_strategy": ("logging_strategy",),
    "max_steps": ("max_steps",),
    "num_train_epochs": ("num_train_epochs", "num_epochs"),
    "bf16": ("bf16", "bf16.enabled", "bfloat16.enabled", "pure_bf16"),
    "fp16": ("fp16", "fp16.enabled"),
    "use_cpu": ("use_cpu", "no_cuda"),
    "report_to": ("report_to",),
}

# Defaults of the libraries (transformers TrainingArguments; TRL's configs override a few).
HF_DEFAULTS: dict[str, object] = {
    "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "save_steps": 500,
    "save_strategy": "steps", "logging_steps": 500, "logging_strategy": "steps", "eval_strategy": "no",
    "bf16": False, "fp16": False, "max_steps": -1, "num_train_epochs": 3,
}
TRL_DEFAULTS: dict[str, object] = {**HF_DEFAULTS, "logging_steps": 10, "bf16": None}
AXOLOTL_DEFAULTS: dict[str, object] = {"gradient_accumulation_steps": 1}
DEEPSPEED_DEFAULTS: dict[str, object] = {"gradient_accumulation_steps": 1}

# Keys that make a YAML/JSON file a training config (two or more must appear).
TRAINING_KEYS = frozenset(k for spellings in ALIASES.values() for k in spellings if "." not in k) | {
    "learning_rate", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "optim", "weight_decay",
    "gradient_checkpointing", "lora_r", "lora_alpha", "adapter", "base_model", "sequence_len",
    "zero_optimization", "train_batch_size", "output_dir",
}


def short_name(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


@dataclass
class TrainingSpec:
    library: str  # transformers | trl | axolotl | deepspeed | config
    line: int
    ctx: Context
    call: ast.Call | None = None
    config: TrainingConfig | None = None
    defaults: dict[str, object] = field(default_factory=dict)
    fields: dict[str, tuple[int, ast.AST]] | None = None  # a TrainingArguments subclass: field -> (line, default)

    def get(self, key: str) -> Arg:
        """The value of canonical `key`; a library default when it is not given."""
        arg = self.given(key)
        if arg.present is False and key in self.defaults:
            return Arg(True, Val("const", self.defaults[key], origin=msg("why.library_default", library=word("library", self.library))), self.line, 1,
                       via="default")
        return arg

    def given(self, key: str) -> Arg:
        """The value of `key` only if the code or config states it."""
        names = ALIASES.get(key, (key,))
        if self.call is not None:
            _, arg = self.ctx.first_kwarg(names, self.call)
            return arg
        if self.fields is not None:
            for n in names:
                f = self.fields.get(n)
                if f is not None:
                    line, node = f
                    v = self.ctx.value(node)
                    # a field default: the command line (HfArgumentParser) may override it
                    return Arg(True, v.weaker("medium", msg("why.field_default", name=n)), line)
            return MISSING
        assert self.config is not None
        for n in names:
            e = self.config.entries.get(n)
            if e is not None:
                v = e.value
                if isinstance(v, str) and v.strip().lower() == "auto":
                    return Arg(True, Val.unknown(msg("why.launcher_auto", name=n)), e.line)
                return Arg(True, Val("const", v), e.line)
        return MISSING

    def number(self, key: str) -> tuple[float | None, Arg]:
        a = self.get(key)
        return (a.val.number if a.present and a.val is not None else None), a

    @property
    def owner(self) -> str | Msg:
        """What holds the arguments: the call's name, a class, or a config, in words."""
        if self.call is not None:
            return short_name(self.ctx.call_name(self.call))
        if self.fields is not None and isinstance(self.ctx.node, ast.ClassDef):
            return msg("owner.class", name=self.ctx.node.name)
        return msg({"axolotl": "owner.axolotl", "deepspeed": "owner.deepspeed"}.get(self.library, "owner.config"))


def training_spec(ctx: Context) -> TrainingSpec | None:
    """The training arguments held by the context's node, if it is a training-arguments call or a
    training config; cached on the context so several rules share the work."""
    if "training_spec" in ctx.facts:
        return ctx.facts["training_spec"]
    spec: TrainingSpec | None = None
    node = ctx.node
    if isinstance(node, ast.Call):
        short = short_name(ctx.call_name(node))
        if short in HF_ARG_CLASSES:
            spec = TrainingSpec("transformers", node.lineno, ctx, call=node, defaults=HF_DEFAULTS)
        elif short in TRL_ARG_CLASSES:
            spec = TrainingSpec("trl", node.lineno, ctx, call=node, defaults=TRL_DEFAULTS)
        elif short in AXOLOTL_ARG_CALLS and {k.arg for k in node.keywords} & {"base_model", "micro_batch_size"}:
            spec = TrainingSpec("axolotl", node.lineno, ctx, call=node, defaults=AXOLOTL_DEFAULTS)
    elif isinstance(node, TrainingConfig):
        # LLaMA-Factory hands its recipe to transformers' TrainingArguments, so those defaults hold;
        # command-line flags ("cli") go to a script whose own defaults are not in sight.
        defaults = {"hf": HF_DEFAULTS, "llamafactory": HF_DEFAULTS, "axolotl": AXOLOTL_DEFAULTS,
                    "deepspeed": DEEPSPEED_DEFAULTS, "cli": {}}[node.flavour]
        library = {"hf": "transformers", "llamafactory": "transformers", "axolotl": "axolotl",
                   "deepspeed": "deepspeed", "cli": "command line"}[node.flavour]
        spec = TrainingSpec(library, node.line, ctx, config=node, defaults=defaults)
    elif isinstance(node, ast.ClassDef):
        spec = _class_spec(ctx, node)
    ctx.facts["training_spec"] = spec
    return spec


def _field_defaults(cls: ast.ClassDef) -> dict[str, tuple[int, ast.AST]]:
    """`name: type = value` and `name: type = field(default=value)` in a dataclass body."""
    out: dict[str, tuple[int, ast.AST]] = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            val: ast.AST | None = stmt.value
            if isinstance(val, ast.Call) and short_name(ast.unparse(val.func)) == "field":
                val = next((k.value for k in val.keywords if k.arg == "default"), None)
            if val is not None:
                out[stmt.target.id] = (stmt.lineno, val)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            out[stmt.targets[0].id] = (stmt.lineno, stmt.value)
    return out


def _class_spec(ctx: Context, cls: ast.ClassDef) -> TrainingSpec | None:
    """A class deriving from TrainingArguments (or a TRL config), directly or through another
    class of this file: its field defaults are the run's arguments unless the command line
    overrides them. The nearest class's field wins over its parents'."""
    memo = ctx.index.memo
    if "arg_classes" not in memo:  # built once per file: class name -> node
        memo["arg_classes"] = {c.name: c for c, _ in ctx.index.nodes(ast.ClassDef)}  # type: ignore[attr-defined]
    classes = memo["arg_classes"]
    if not cls.bases:
        return None
    fields: dict[str, tuple[int, ast.AST]] = {}
    node: ast.ClassDef | None = cls
    library = None
    for _ in range(4):
        if node is None:
            break
        for k, v in _field_defaults(node).items():
            fields.setdefault(k, v)
        bases = [short_name(ctx.qualname(b) or "") for b in node.bases]
        if set(bases) & HF_ARG_CLASSES:
            library = "transformers"
            break
        if set(bases) & TRL_ARG_CLASSES:
            library = "trl"
            break
        node = next((classes[b] for b in bases if b in classes and classes[b] is not node), None)
    if library is None:
        return None
    return TrainingSpec(library, cls.lineno, ctx, defaults=TRL_DEFAULTS if library == "trl" else HF_DEFAULTS,
                        fields=fields)


def is_training_module(ctx: Context) -> bool:
    """Does this Python file train a model (a Trainer, peft adapters, or a backward pass)?"""
    ix = ctx.index
    shorts = {short_name(n) for n in ix.call_names}
    return bool(shorts & (TRAINER_CLASSES | HF_ARG_CLASSES | TRL_ARG_CLASSES)) or bool(
        {"get_peft_model", "prepare_model_for_kbit_training", "backward"} & (shorts | ix.method_names))


def config_quant(cfg: TrainingConfig) -> tuple[int | None, int]:
    """(bits, line) of the bitsandbytes quantization a training config asks for: axolotl
    `load_in_8bit` / `load_in_4bit` (or `adapter: qlora`), LLaMA-Factory `quantization_bit`
    with the bitsandbytes method (its default), command-line `--load_in_4bit` style flags."""
    e = cfg.entries
    for bits, key in ((4, "load_in_4bit"), (8, "load_in_8bit")):
        v = e.get(key)
        if v is not None and (v.value is True or (isinstance(v.value, str) and v.value.lower() == "true")):
            return bits, v.line
    qb = e.get("quantization_bit")
    method = e.get("quantization_method")
    if qb is not None and isinstance(qb.value, int) and qb.value in (4, 8) and (
            method is None or str(method.value).lower() in ("bnb", "bitsandbytes")):
        return qb.value, qb.line
    adapter = e.get("adapter")
    if cfg.flavour == "axolotl" and adapter is not None and adapter.value == "qlora":
        return 4, adapter.line
    return None, cfg.line


def config_model(cfg: TrainingConfig) -> Arg:
    """The base model a training config names (axolotl `base_model`, HF/LLaMA-Factory
    `model_name_or_path`)."""
    for key in ("base_model", "model_name_or_path", "model_name", "model_id", "model"):
        e = cfg.entries.get(key)
        if e is not None and isinstance(e.value, str):
            return Arg(True, Val("const", e.value), e.line)
    return MISSING
