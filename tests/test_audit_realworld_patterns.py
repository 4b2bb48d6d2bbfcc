"""Patterns seen in real training and inference code (issue 16), each on a file written here:
LLaMA-Factory / axolotl YAML keys, training flags in shell scripts, TrainingArguments subclasses,
16-bit casts behind flags that are off by default, Gradio and input() loops, plain-loop logging,
and transformers 5's generation_config."""

from __future__ import annotations

import textwrap

from advisor.audit import Auditor, AuditSettings


def audit(code: str, name: str = "snippet.py"):
    return Auditor(AuditSettings()).audit_code(textwrap.dedent(code), name)


def audit_tree(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return Auditor(AuditSettings()).audit_paths([str(tmp_path)])


def found(report) -> set[tuple[str, int]]:
    return {(f.code, f.line) for f in report.findings}


def by_code(report, code: str):
    return [f for f in report.findings if f.code == code]


# -- YAML configs ----------------------------------------------------------------------------------
def test_axolotl_8bit_lora_is_int8_mixed():
    r = audit("""\
        base_model: NousResearch/Llama-2-7b-hf
        adapter: lora
        load_in_8bit: true
        micro_batch_size: 2
        gradient_accumulation_steps: 4
        logging_steps: 1
        """, "lora.yml")
    assert found(r) == {("ECO101", 3), ("ECO205", 6)}
    assert by_code(r, "ECO205")[0].severity == "green"


def test_an_int8_threshold_of_zero_in_the_config_is_respected():
    r = audit("""\
        base_model: NousResearch/Llama-2-7b-hf
        adapter: lora
        load_in_8bit: true
        micro_batch_size: 2
        bnb_config_kwargs:
          llm_int8_threshold: 0.0
        """, "lora.yml")
    assert by_code(r, "ECO101") == []


def test_llamafactory_quantization_bit():
    four = audit("""\
        ### model
        model_name_or_path: Qwen/Qwen2.5-1.5B-Instruct
        quantization_bit: 4
        stage: sft
        finetuning_type: lora
        per_device_train_batch_size: 2
        gradient_accumulation_steps: 8
        bf16: true
        """, "qwen_qlora.yaml")
    assert found(four) == {("ECO203", 3)}
    assert "1.5" in by_code(four, "ECO203")[0].message
    eight = audit("""\
        model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
        quantization_bit: 8
        stage: sft
        finetuning_type: lora
        per_device_train_batch_size: 2
        gradient_accumulation_steps: 8
        bf16: true
        """, "llama_int8.yaml")
    assert found(eight) == {("ECO101", 2)}
    # another quantization method (HQQ, EETQ) is not bitsandbytes' LLM.int8()
    other = audit("""\
        model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
        quantization_bit: 8
        quantization_method: eetq
        stage: sft
        per_device_train_batch_size: 2
        bf16: true
        """, "llama_eetq.yaml")
    assert by_code(other, "ECO101") == []


# -- shell scripts ---------------------------------------------------------------------------------
TRAIN_SH = """\
    #!/bin/bash
    pip install -r requirements.txt
    torchrun --nproc_per_node 4 train.py \\
        --model_name_or_path facebook/opt-1.3b \\
        --load_in_4bit \\
        --output_dir out \\
        --logging_steps 1 \\
        --save_steps 10 --max_steps 1000 \\
        --learning_rate 2e-4
    """


def test_training_flags_in_a_shell_script_are_read_at_their_own_lines():
    r = audit(TRAIN_SH, "train.sh")
    assert found(r) == {("ECO203", 5), ("ECO205", 7), ("ECO201", 8)}


def test_shell_flags_without_the_scripts_defaults_do_not_guess():
    # bf16 is not on the command line, but the script may default it on: no FP32-training claim;
    # nor is batch 1 reported without a visible accumulation setting.
    r = audit("""\
        python finetune.py --model_name_or_path gpt2 --output_dir out --learning_rate 1e-4 \\
            --per_device_train_batch_size 1 --save_steps 500
        accelerate launch sft.py --output-dir out --logging-steps 10 --num_train_epochs 3
        """, "run.sh")
    assert r.findings == []


def test_a_command_that_launches_nothing_gives_no_training_config():
    r = audit("echo --logging_steps 1 --save_steps 1\n", "notes.sh")
    assert r.findings == []


# -- TrainingArguments subclasses ------------------------------------------------------------------
def test_dataclass_defaults_of_a_training_arguments_subclass():
    r = audit("""\
        from dataclasses import dataclass, field
        from transformers import HfArgumentParser, Trainer, TrainingArguments

        @dataclass
        class MyArgs(TrainingArguments):
            save_steps: int = 250
            max_steps: int = field(default=10000, metadata={"help": "steps"})
            logging_steps: int = 1

        @dataclass
        class Quiet(MyArgs):
            logging_steps: int = 20

        (args,) = HfArgumentParser(MyArgs).parse_args_into_dataclasses()
        Trainer(model=None, args=args).train()
        """)
    f201 = [f for f in by_code(r, "ECO201")]
    assert {(f.line, f.confidence) for f in f201} == {(6, "medium")}  # Quiet inherits it: one line, one finding
    assert "40 checkpoints" in f201[0].message
    assert {f.line for f in by_code(r, "ECO205")} == {8}


def test_a_dataclass_that_is_not_training_arguments_is_ignored():
    r = audit("""\
        from dataclasses import dataclass

        @dataclass
        class ScriptArgs:
            save_steps: int = 5
            max_steps: int = 10000
        """)
    assert r.findings == []


# -- ECO107: casts behind flags --------------------------------------------------------------------
INFER = """\
    import argparse
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    p = argparse.ArgumentParser()
    p.add_argument("--half", action="store_true")
    p.add_argument("--quant", action="store_true")
    args = p.parse_args()
    bnb = BitsAndBytesConfig(load_in_4bit=True)
    model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-2-7b-hf", device_map="cuda",
                                                 quantization_config=bnb if args.quant else None)
    if {cond}:
        model.half()
    out = model.generate(**tok("hi", return_tensors="pt").to("cuda"))
    """


def test_eco107_a_cast_behind_a_flag_that_is_off_does_not_silence(tmp_path):
    r = audit_tree(tmp_path, {"infer.py": INFER.format(cond="args.half"), "requirements.txt": "transformers==4.46.0\n"})
    f = by_code(r, "ECO107")
    assert [(x.line, x.severity, x.confidence) for x in f] == [(10, "yellow", "medium")]
    assert "--half" in f[0].message and "off by default" in f[0].message


def test_eco107_a_cast_that_runs_silences_and_an_unreadable_one_lowers_confidence(tmp_path):
    on = audit_tree(tmp_path / "a", {"infer.py": INFER.format(cond="not args.half"),
                                     "requirements.txt": "transformers==4.46.0\n"})
    assert by_code(on, "ECO107") == []
    maybe = audit_tree(tmp_path / "b", {"infer.py": INFER.format(cond="torch.cuda.is_available()"),
                                        "requirements.txt": "transformers==4.46.0\n"})
    f = by_code(maybe, "ECO107")
    assert [(x.severity, x.confidence) for x in f] == [("gray", "low")]


def test_eco107_quantization_on_by_default_silences():
    r = audit(INFER.format(cond="args.half").replace('"--quant", action="store_true"',
                                                    '"--quant", action="store_false"'))
    assert by_code(r, "ECO107") == []


# -- ECO105: Gradio, input() -----------------------------------------------------------------------
GRADIO = """\
    from threading import Thread
    import gradio as gr
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    tok = AutoTokenizer.from_pretrained("Qwen/Qwen2.5-7B-Instruct")
    model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct", torch_dtype=torch.bfloat16,
                                                 device_map="cuda")

    def respond(message, history):
        inputs = tok(message, return_tensors="pt").to("cuda")
        streamer = TextIteratorStreamer(tok)
        Thread(target=model.generate, kwargs=dict(inputs, streamer=streamer)).start()
        for piece in streamer:
            yield piece

    def summarize(text):
        return run(text)

    def run(text):
        ids = tok(text, return_tensors="pt").to("cuda")
        return tok.decode(model.generate(**ids)[0])

    with gr.Blocks() as demo:
        box = gr.Textbox()
        gr.Button().click(summarize, inputs=box, outputs=box{batch})
    gr.ChatInterface(respond).launch()
    """


def test_eco105_gradio_handlers_and_the_streaming_thread():
    r = audit(GRADIO.format(batch=""))
    assert {(f.line, f.confidence) for f in by_code(r, "ECO105")} == {(13, "medium"), (22, "medium")}
    assert "Gradio handler" in by_code(r, "ECO105")[0].message


def test_eco105_gradio_batch_true_is_batched():
    r = audit(GRADIO.format(batch=", batch=True, max_batch_size=8"))
    assert {f.line for f in by_code(r, "ECO105")} == {13}


def test_eco105_an_input_loop_serves_one_prompt_at_a_time():
    r = audit("""\
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained("Qwen/Qwen2.5-7B-Instruct")
        model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct", torch_dtype=torch.bfloat16,
                                                     device_map="cuda")
        while True:
            q = input("> ")
            if q == "exit":
                break
            ids = tok(q, return_tensors="pt").to("cuda")
            print(tok.decode(model.generate(**ids, max_new_tokens=100)[0]))
        while True:
            model.generate(**warmup)  # a loop that does not read input() is not a prompt loop
            break
        """)
    assert [(f.line, f.confidence) for f in by_code(r, "ECO105")] == [(11, "medium")]


# -- ECO205 / ECO201: plain loops ------------------------------------------------------------------
LOOP = """\
    import torch
    model = torch.nn.Linear(2, 2).cuda()
    opt = torch.optim.AdamW(model.parameters())
    for epoch in range(3):
        for step, batch in enumerate(loader):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(batch).sum()
            loss.backward()
            opt.step()
            print(f"step {step} loss {loss.item()}")
            if accelerator.is_main_process:
                wandb.log({"loss": loss.item()})
            if step % 50:
                print("loss", loss.item())
            if step % 100 == 0:
                print("ok", loss.item())
            if verbose:
                print("verbose", loss.item())
            if step % 500:
                torch.save(model.state_dict(), "ck.pt")
        print("epoch", loss.item())
    for batch in eval_loader:
        print(model(batch).sum().item())
    """


def test_plain_loop_logging_every_step_and_inverted_modulo():
    r = audit(LOOP)
    assert {(f.code, f.line) for f in r.findings if f.code in ("ECO201", "ECO205")} == {
        ("ECO205", 10), ("ECO205", 12), ("ECO205", 13), ("ECO201", 19)}
    inverted = next(f for f in r.findings if (f.code, f.line) == ("ECO205", 13))
    assert "49 of 50" in inverted.message and inverted.fix == "if step % 50 == 0:"
    save = next(f for f in r.findings if f.code == "ECO201")
    assert "499 of 500" in save.message and save.severity == "yellow"


# -- ECO106 and the transformers version -----------------------------------------------------------
GEN = """\
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained("gpt2", torch_dtype="auto")
    model.config.use_cache = False
    model.generate(**ids)
    """


def test_eco106_model_config_use_cache_follows_the_transformers_major(tmp_path):
    old = audit_tree(tmp_path / "a", {"gen.py": GEN, "requirements.txt": "transformers==4.46.0\n"})
    assert [(f.code, f.line, f.severity) for f in old.findings] == [("ECO106", 3, "yellow")]
    assert "4.x" in old.findings[0].message
    new = audit_tree(tmp_path / "b", {"gen.py": GEN, "requirements.txt": "transformers>=5.0\n"})
    assert new.findings == []


def test_eco106_without_a_pin_follows_the_installed_version_or_says_both(monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "4.57.1")
    assert [(f.severity, "installed 4.57.1" in f.message) for f in audit(GEN).findings] == [("yellow", True)]
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.2.0")
    assert audit(GEN).findings == []

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    f = audit(GEN).findings
    assert [(x.severity, x.confidence) for x in f] == [("gray", "low")]
    assert "4.x" in f[0].message and "transformers 5" in f[0].message


def test_generation_config_use_cache_false_is_reported_on_every_version():
    r = audit("model.generation_config.use_cache = False\nmodel.generate(**ids)\n")
    assert [f.code for f in r.findings] == ["ECO106"]


# -- false alarms ----------------------------------------------------------------------------------
def test_eco202_no_fp32_claim_for_a_plain_loop_over_an_8bit_base():
    r = audit("""\
        import torch
        from transformers import Blip2ForConditionalGeneration
        model = Blip2ForConditionalGeneration.from_pretrained("Salesforce/blip2-opt-2.7b", load_in_8bit=True,
                                                              device_map="auto")
        for batch in loader:
            pixel_values = batch["pixel_values"].to("cuda", torch.float16)
            loss = model(pixel_values=pixel_values, labels=batch["ids"]).loss
            loss.backward()
            opt.step()
        """)
    assert by_code(r, "ECO202") == []


QLORA = """\
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from peft import get_peft_model

    def train(base_model: str):
        bnb = BitsAndBytesConfig(load_in_4bit=True)
        model = AutoModelForCausalLM.from_pretrained(base_model, quantization_config=bnb)
        get_peft_model(model, cfg)
    """


def test_eco203_the_model_named_in_a_comment_decides(tmp_path):
    small = audit(QLORA + "# run with: python train.py --base_model Qwen/Qwen2.5-0.5B\n")
    f = by_code(small, "ECO203")
    assert [(x.line, x.confidence) for x in f] == [(6, "low")] and "Qwen/Qwen2.5-0.5B" in f[0].message
    big = audit(QLORA + "# tested with meta-llama/Llama-2-70b-hf and Qwen/Qwen2.5-0.5B\n")
    assert by_code(big, "ECO203") == []  # the largest model it names does not fit 16-bit LoRA
    unknown = audit(QLORA)
    assert by_code(unknown, "ECO203") == []  # no size anywhere: nothing to claim


def test_eco203_the_readme_or_config_beside_the_script_names_the_model(tmp_path):
    r = audit_tree(tmp_path, {"recipe/train.py": QLORA,
                              "recipe/README.md": "Fine-tune `meta-llama/Meta-Llama-3-70B` with QLoRA.\n"})
    assert by_code(r, "ECO203") == []
    r = audit_tree(tmp_path / "b", {"recipe/train.py": QLORA,
                                    "recipe/config.yaml": "model_name_or_path: HuggingFaceTB/SmolLM2-360M\n"})
    assert [x.line for x in by_code(r, "ECO203")] == [6]


def test_eco203_an_argument_default_of_the_same_name_is_followed():
    r = audit(QLORA + """\
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--base_model", default="meta-llama/Llama-2-70b-hf")
        args = p.parse_args()
        train(args.base_model)
        """)
    assert by_code(r, "ECO203") == []


def test_library_modules_report_only_what_they_state():
    lib = """\
        from .utils import helper
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        def load(model_id, **kwargs):
            model = AutoModelForCausalLM.from_pretrained(model_id, device_map="cuda", **kwargs)
            for p in prompts:
                model.generate(**tok(p))
            return BitsAndBytesConfig(load_in_8bit=True)
        """
    r = audit(lib, "pkg/loader.py")
    assert [f.code for f in r.findings] == ["ECO101"]  # a literal 8-bit config is a trap wherever it is
    script = audit(lib.replace("from .utils import helper", "import os"), "loader.py")
    assert {f.code for f in script.findings} >= {"ECO101", "ECO105"}


# -- second round: patterns and false alarms from the judged real-world sample -------------------
def test_eco204_packed_micro_batches_are_not_one_sequence():
    base = """\
        base_model: Qwen/Qwen2.5-7B
        micro_batch_size: 1
        gradient_accumulation_steps: 1
        sequence_len: 4096
        {packing}
        """
    assert [f.line for f in by_code(audit(base.format(packing="sample_packing: false"), "a.yml"), "ECO204")] == [2]
    assert by_code(audit(base.format(packing="sample_packing: true"), "a.yml"), "ECO204") == []
    r = audit("""\
        from trl import SFTConfig
        SFTConfig(output_dir="o", per_device_train_batch_size=1, gradient_accumulation_steps=1, packing=True)
        """)
    assert by_code(r, "ECO204") == []


def test_eco202_accelerator_without_mixed_precision_leaves_it_to_the_launch_config():
    loop = """\
        import torch
        from accelerate import Accelerator
        accelerator = Accelerator({arg})
        model = torch.nn.Linear(2, 2).cuda()
        for batch in loader:
            loss = model(batch).sum()
            accelerator.backward(loss)
        """
    assert by_code(audit(loop.format(arg="")), "ECO202") == []
    assert [f.line for f in by_code(audit(loop.format(arg='mixed_precision="no"')), "ECO202")] == [7]


def test_eco107_conversion_scripts_and_cpu_device_maps_are_not_inference(tmp_path):
    files = {"requirements.txt": "transformers==4.46.0\n", "convert.py": """\
        import torch
        from transformers import AutoModelForCausalLM
        hf = AutoModelForCausalLM.from_pretrained("gpt2-xl", device_map="cuda")
        sd = hf.state_dict()
        torch.save(sd, "weights.pt")
        """, "diff.py": """\
        import torch
        from transformers import AutoModelForCausalLM
        def make_diff(path, device="cpu"):
            m = AutoModelForCausalLM.from_pretrained(path, device_map={"": torch.device(device)},
                                                     torch_dtype=torch.float32)
            return m(**batch)
        """, "serve.py": """\
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained("gpt2-xl", device_map="cuda")
        m.generate(**ids)
        """}
    r = audit_tree(tmp_path, files)
    assert [(f.path.rsplit("/", 1)[-1], f.code) for f in r.findings] == [("serve.py", "ECO107")]


def test_eco105_a_loop_that_times_each_generate_is_a_latency_benchmark():
    r = audit("""\
        import time
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt").to("cuda")
            t0 = time.perf_counter()
            model.generate(**ids)
            latency.append(time.perf_counter() - t0)
        for prompt in prompts:
            model.generate(**tok(prompt, return_tensors="pt").to("cuda"))
        """)
    assert [f.line for f in by_code(r, "ECO105")] == [8]


def test_shell_variables_feed_the_flags():
    r = audit("""\
        lr=1e-4
        LOG=1
        export SAVE=10
        torchrun train.py --learning_rate ${lr} --output_dir out \\
           --logging_steps $LOG --save_steps "${SAVE}" --max_steps 1000
        """, "run.sh")
    assert found(r) == {("ECO201", 5), ("ECO205", 5)}


def test_an_axolotl_config_built_in_python():
    r = audit("""\
        from axolotl.utils.dict import DictDefault
        cfg = DictDefault(base_model="Qwen/Qwen3-14B", micro_batch_size=2, gradient_accumulation_steps=2,
                          logging_steps=1, bf16=True)
        other = DictDefault(logging_steps=1)  # not a training config: no model, no batch size
        """)
    assert found(r) == {("ECO205", 3)}


def test_eco203_a_model_of_unknown_size_is_not_reported():
    r = audit("""\
        base_model: mistralai/Devstral-Small-2507
        load_in_4bit: true
        adapter: qlora
        micro_batch_size: 2
        """, "qlora.yml")
    assert by_code(r, "ECO203") == []


def test_xpu_inference_counts_as_accelerator_inference():
    r = audit("""\
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct").to("xpu")
        model.generate(**ids)
        """)
    assert [f.code for f in r.findings] == ["ECO107"]


def test_eco105_the_chat_api_of_remote_code_models_and_an_input_helper():
    r = audit("""\
        from transformers import AutoModel, AutoTokenizer
        tok = AutoTokenizer.from_pretrained("THUDM/chatglm-6b", trust_remote_code=True)
        model = AutoModel.from_pretrained("THUDM/chatglm-6b", trust_remote_code=True).half().cuda()

        def ask() -> str:
            return input("User: ").strip()

        history = []
        while True:
            query = ask()
            for response, history in model.stream_chat(tok, query, history=history):
                print(response)
        for q in questions:
            answer, _ = model.chat(tok, q, history=[])
        session.chat("not a model")  # .chat on something else is not generation
        """)
    assert [(f.line, "input()" in f.message) for f in by_code(r, "ECO105")] == [(11, True), (14, False)]


def test_eco107_chained_casts_and_remote_code_models():
    base = """\
        from transformers import AutoModel
        model = AutoModel.from_pretrained("THUDM/chatglm-6b"{kw}){chain}
        model.generate(**ids)
        """
    pinned = Auditor(AuditSettings())
    pinned.run.pins["transformers"] = "==4.27.1"

    def eco107(kw: str, chain: str) -> list[int]:
        rep = pinned.audit_code(textwrap.dedent(base.format(kw=kw, chain=chain)), "x.py")
        return [f.line for f in rep.findings if f.code == "ECO107"]

    assert eco107("", ".cuda()") == [2]
    assert eco107("", ".half().cuda()") == []
    assert eco107("", ".to(torch.bfloat16)") == []
    assert eco107(", trust_remote_code=True", ".cuda()") == []  # its own code may choose the dtype


def test_eco101_reads_the_8bit_switch_of_a_config_that_offers_both():
    r = audit("""\
        import argparse
        from transformers import BitsAndBytesConfig
        p = argparse.ArgumentParser()
        p.add_argument("--load_in_4bit", action="store_true")
        p.add_argument("--load_in_8bit", action="store_true")
        args = p.parse_args()
        cfg = BitsAndBytesConfig(load_in_4bit=args.load_in_4bit, load_in_8bit=args.load_in_8bit)
        """)
    f = by_code(r, "ECO101")
    assert [(x.line, x.severity, x.confidence) for x in f] == [(7, "gray", "low")]


def test_eco105_through_a_helper_called_per_item_or_per_request():
    r = audit("""\
        from fastapi import FastAPI
        app = FastAPI()

        def answer(model, question):
            ids = tok(question, return_tensors="pt").to("cuda")
            return model.generate(**ids)

        def predict(prompt):
            return model.generate(**tok(prompt, return_tensors="pt").to("cuda"))

        @app.post("/v1/completions")
        def complete(req):
            return predict(req.prompt)

        for q in questions:
            print(answer(model, q))
        answer(model, "warm-up")
        """)
    got = [(f.line, f.message.split(" (batch")[0]) for f in by_code(r, "ECO105")]
    assert got == [(9, "predict() runs its own model.generate call for each request of the endpoint complete()"),
                   (16, "model.generate in answer() runs once per item of the loop over 'questions'")]


def test_eco105_taint_flows_through_method_calls_and_model_factories():
    r = audit("""\
        from transformers import AutoModelForCausalLM

        def init_model():
            return AutoModelForCausalLM.from_pretrained("baichuan-inc/Baichuan2-13B-Chat", torch_dtype="auto")

        model = init_model()
        messages = []
        while True:
            prompt = input("> ")
            messages.append({"role": "user", "content": prompt})
            print(model.chat(tok, messages))
        """)
    assert [(f.line, "input()" in f.message) for f in by_code(r, "ECO105")] == [(11, True)]


def test_eco201_a_save_in_a_loop_that_does_not_train_is_no_checkpoint():
    r = audit("""\
        for i, (role, msg) in enumerate(messages):
            if i % 2 == 0:
                image.save(buffer, format="PNG")
        """)
    assert r.findings == []


def test_eco202_a_deepspeed_engine_takes_its_precision_from_its_config():
    r = audit("""\
        import deepspeed
        import torch
        model = torch.nn.Linear(2, 2).cuda()
        engine, opt, _, _ = deepspeed.initialize(model=model, config=ds_config)
        for batch in loader:
            loss = engine(batch).sum()
            engine.backward(loss)
        """)
    assert by_code(r, "ECO202") == []


def test_eco107_parts_of_a_model_class_and_modules_of_a_package(tmp_path):
    r = audit_tree(tmp_path, {
        "requirements.txt": "transformers==4.37.2\n",
        "pkg/__init__.py": "",
        "pkg/encoder.py": """\
            from transformers import CLIPVisionModel
            class Tower:
                def load(self):
                    self.tower = CLIPVisionModel.from_pretrained(self.name, device_map="cuda")
                    self.tower(pixels)
            """,
        "pkg/builder.py": """\
            from pkg.encoder import Tower
            from transformers import AutoModelForCausalLM
            def build(path):
                m = AutoModelForCausalLM.from_pretrained(path, device_map="cuda")
                return m.generate(**ids)
            """,
        "pkg/run.py": """\
            from pkg.encoder import Tower
            from transformers import AutoModelForCausalLM
            m = AutoModelForCausalLM.from_pretrained("acme/x-7B", device_map="cuda")
            m.generate(**ids)
            if __name__ == "__main__":
                pass
            """})
    assert [(f.path.rsplit("/", 1)[-1], f.code) for f in r.findings] == [("run.py", "ECO107")]


def test_eco105_streamlit_apps_and_worker_methods_called_by_an_endpoint():
    st = audit("""\
        import streamlit as st
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct", torch_dtype="auto")
        if prompt := st.chat_input("ask"):
            st.write(model.generate(**tok(prompt, return_tensors="pt")))
        """)
    assert [f.line for f in by_code(st, "ECO105")] == [5] and "Streamlit" in st.findings[0].message
    worker = audit("""\
        from threading import Thread
        from fastapi import FastAPI
        app = FastAPI()

        class Worker:
            def generate_stream(self, params):
                Thread(target=self.model.generate, kwargs=params).start()

            def gate(self, params):
                return self.generate_stream(params)

        @app.post("/worker_generate_stream")
        async def generate_stream(request):
            return worker.gate(await request.json())
        """)
    assert [f.line for f in by_code(worker, "ECO105")] == [7]


def test_templates_and_quantization_toolkit_loaders_are_not_model_loads():
    r = audit("""\
        from awq import AutoAWQForCausalLM
        from transformers import AutoModelForCausalLM
        template = DialogueTemplate.from_pretrained("bigcode/starchat", device_map="cuda")
        model = AutoAWQForCausalLM.from_pretrained("Qwen/Qwen2.5-7B", device_map="cuda")
        model.generate(**ids)
        """)
    assert by_code(r, "ECO107") == []


def test_eco106_a_continuous_batching_branch_keeps_its_own_cache():
    r = audit("""\
        if use_cb:
            generation_config.use_cache = False  # the engine pages its own KV cache
        else:
            generation_config.max_new_tokens = 10
        model.generate(**ids, generation_config=generation_config)
        """)
    assert r.findings == []


def test_eco203_a_file_that_lists_many_models_gives_no_size():
    listing = "\n".join(f"# - acme/model-{n}-0.5B" for n in range(6))
    r = audit(QLORA + listing + "\n")
    assert by_code(r, "ECO203") == []  # an app's model list: not the model this run trains
    r = audit(QLORA + "# - acme/model-0.5B\n")
    assert [f.line for f in by_code(r, "ECO203")] == [6]
