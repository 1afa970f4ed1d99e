"""The planner's database shell: read its inputs, store and apply plans, the loop and profiler.

Everything here talks to the database or the broker; the pure core it runs
lives in ``controller.planner`` and never imports from here.
"""
