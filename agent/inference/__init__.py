"""Inference on a loaded GGUF: the llama.cpp adapter, prompts, generation, self-refinement."""
