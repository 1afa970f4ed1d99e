"""The planner: PeRFICS scores, feasibility filters, predictions, profiling and assignment.

Pure functions over plain data: the database is read before the pipeline and
written after it, never inside.
"""
