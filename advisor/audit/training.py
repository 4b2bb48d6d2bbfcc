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

# transformers.TrainingArguments and subclasses; TRL's configs subclass it with other defaults.
HF_ARG_CLASSES = frozenset({"TrainingArguments", "Seq2SeqTrainingArguments", "UnslothTrainingArguments"})
TRL_ARG_CLASSES = frozenset({
    "SFTConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "CPOConfig", "GRPOConfig", "RewardConfig",
    "GKDConfig", "RLOOConfig", "OnlineDPOConfig", "PPOConfig", "BCOConfig", "PRMConfig", "NashMDConfig",
    "XPOConfig",
})
TRAINING_ARG_CALLS = HF_ARG_CLASSES | TRL_ARG_CLASSES
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

    def get(self, key: str) -> Arg:
        """The value of canonical `key`; a library default when it is not given."""
        arg = self.given(key)
        if arg.present is False and key in self.defaults:
            return Arg(True, Val("const", self.defaults[key], origin=f"{self.library} default"), self.line, 1,
                       via="default")
        return arg

    def given(self, key: str) -> Arg:
        """The value of `key` only if the code or config states it."""
        names = ALIASES.get(key, (key,))
        if self.call is not None:
            _, arg = self.ctx.first_kwarg(names, self.call)
            return arg
        assert self.config is not None
        for n in names:
            e = self.config.entries.get(n)
            if e is not None:
                v = e.value
                if isinstance(v, str) and v.strip().lower() == "auto":
                    return Arg(True, Val.unknown(f"'{n}: auto' is decided by the launcher at run time"), e.line)
                return Arg(True, Val("const", v), e.line)
        return MISSING

    def number(self, key: str) -> tuple[float | None, Arg]:
        a = self.get(key)
        return (a.val.number if a.present and a.val is not None else None), a

    @property
    def owner(self) -> str:
        if self.call is not None:
            return short_name(self.ctx.call_name(self.call))
        return {"axolotl": "axolotl config", "deepspeed": "DeepSpeed config"}.get(self.library, "training config")


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
    elif isinstance(node, TrainingConfig):
        defaults = {"hf": HF_DEFAULTS, "axolotl": AXOLOTL_DEFAULTS, "deepspeed": DEEPSPEED_DEFAULTS}[node.flavour]
        library = {"hf": "transformers", "axolotl": "axolotl", "deepspeed": "deepspeed"}[node.flavour]
        spec = TrainingSpec(library, node.line, ctx, config=node, defaults=defaults)
    ctx.facts["training_spec"] = spec
    return spec


def is_training_module(ctx: Context) -> bool:
    """Does this Python file train a model (a Trainer, peft adapters, or a backward pass)?"""
    ix = ctx.index
    shorts = {short_name(n) for n in ix.call_names}
    return bool(shorts & (TRAINER_CLASSES | HF_ARG_CLASSES | TRL_ARG_CLASSES)) or bool(
        {"get_peft_model", "prepare_model_for_kbit_training", "backward"} & (shorts | ix.method_names))
