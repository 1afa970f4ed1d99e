"""The llama.cpp engine: a build made on purpose, and checks that it runs on this box."""
