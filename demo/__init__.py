"""The fleet demo: a controller and agents as real local processes, driven through the API.

Nothing here imports the agent or the controller: they run as ``edgefleet``
subprocesses and are reached over HTTP, as an operator would reach them. The
end-to-end tests start their fleets with the same :mod:`demo.local_fleet`.
"""
