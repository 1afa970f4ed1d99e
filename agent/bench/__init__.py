"""Benchmarks: throughput, memory and quality of a model on this device, and the bench command."""
