"""Contracts both the agent and the controller agree on: topics, messages, score, profiles."""
