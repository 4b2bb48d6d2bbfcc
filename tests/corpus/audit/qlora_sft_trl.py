"""QLoRA SFT of a 1B model with TRL (the usual recipe)."""
import torch
from datasets import load_dataset
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

BASE = "meta-llama/Llama-3.2-1B"
SAVE_EVERY = 25

bnb_config = BitsAndBytesConfig(
    load_in_4bit=True,
    bnb_4bit_quant_type="nf4",
    bnb_4bit_compute_dtype=torch.bfloat16,
    bnb_4bit_use_double_quant=True,
)
model = AutoModelForCausalLM.from_pretrained(BASE, quantization_config=bnb_config, device_map={"": 0})
model = prepare_model_for_kbit_training(model)
tokenizer = AutoTokenizer.from_pretrained(BASE)
dataset = load_dataset("json", data_files="train.jsonl", split="train")

peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
training_args = SFTConfig(
    output_dir="llama-qlora",
    per_device_train_batch_size=1,
    gradient_accumulation_steps=8,
    max_steps=2000,
    learning_rate=2e-4,
    logging_steps=1,
    save_steps=SAVE_EVERY,
    optim="paged_adamw_8bit",
)
trainer = SFTTrainer(model=model, args=training_args, train_dataset=dataset, peft_config=peft_config,
                     processing_class=tokenizer)
trainer.train()
trainer.save_model("llama-qlora/final")
