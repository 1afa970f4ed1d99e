"""The local chat API (OpenAI-compatible) and its serving metrics."""
