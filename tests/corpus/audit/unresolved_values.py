"""A CLI that takes its settings from the command line."""
import argparse
import sys

from transformers import AutoModelForCausalLM, BitsAndBytesConfig

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="Qwen/Qwen2.5-1.5B-Instruct")
parser.add_argument("--int8", action="store_true")
args = parser.parse_args()

by_default = AutoModelForCausalLM.from_pretrained(args.model, load_in_4bit=True)
eight = BitsAndBytesConfig(load_in_8bit=args.int8)
who_knows = AutoModelForCausalLM.from_pretrained(sys.argv[2], load_in_4bit=True)
