"""The fleet demo: a controller and agents as real local processes, driven through the API.

Operator-side tooling: nothing here imports the agent or the rest of the controller;
they run as ``edgefleet`` subprocesses and are reached over HTTP, as an operator would
reach them. The end-to-end tests start their fleets with the same
:mod:`controller.demo.local_fleet`.
"""
