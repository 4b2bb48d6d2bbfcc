"""Loading helpers that pass quantization settings around in dicts and variables."""
import transformers as tf
from transformers import BitsAndBytesConfig as BNB

MID = "01-ai/Yi-1.5-6B"
PURE = 0.0
load_kwargs = dict(
    device_map="auto",
    load_in_8bit=True,
)
model_a = tf.AutoModelForCausalLM.from_pretrained(MID, **load_kwargs)

pure_cfg = BNB(**{"load_in_8bit": True, "llm_int8_threshold": PURE})
model_b = tf.AutoModelForCausalLM.from_pretrained(MID, quantization_config=pure_cfg)

later_cfg = BNB(load_in_8bit=True)
later_cfg.llm_int8_threshold = 0.0
model_c = tf.AutoModelForCausalLM.from_pretrained(MID, quantization_config=later_cfg)

explicit_mixed = BNB(load_in_8bit=True, llm_int8_threshold=6.0)
off = BNB(load_in_8bit=False)
