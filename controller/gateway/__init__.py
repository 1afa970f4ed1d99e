"""The fleet gateway: one OpenAI-compatible address for end users, routed to devices."""
