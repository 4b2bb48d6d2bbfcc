"""QLoRA on a 7B model with the Trainer: mixed precision, epoch checkpoints, energy tracked."""
import torch
from codecarbon import EmissionsTracker
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments

model = AutoModelForCausalLM.from_pretrained(
    "mistralai/Mistral-7B-v0.1",
    quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16),
    device_map="auto",
)
model.config.use_cache = False
model.gradient_checkpointing_enable()
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))

args = TrainingArguments(
    output_dir="mistral-lora",
    per_device_train_batch_size=4,
    gradient_accumulation_steps=4,
    num_train_epochs=2,
    bf16=True,
    save_strategy="epoch",
    eval_strategy="epoch",
    logging_steps=50,
    report_to=["codecarbon"],
)
trainer = Trainer(model=model, args=args)
with EmissionsTracker(project_name="mistral-lora"):
    trainer.train()
