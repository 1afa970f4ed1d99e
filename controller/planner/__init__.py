"""The planner's pure core: PeRFICS scores, feasibility filters, predictions, profiling, assignment.

Pure functions over plain data: ``controller.plans`` reads the database before
the pipeline and writes after it, never inside. Nothing here imports the rest
of the controller (tests/test_import_direction.py says so).
"""
