"""The edgefleet controller: ingest, registry, scores, plans, API and dashboard."""
