"""The operators' web dashboard (static files the controller serves)."""
