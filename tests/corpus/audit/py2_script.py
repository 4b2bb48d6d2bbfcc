import os
from transformers import AutoModelForCausalLM

print "loading"
model = AutoModelForCausalLM.from_pretrained("gpt2", load_in_8bit=True)
try:
    os.remove("x")
except OSError, e:
    print e
