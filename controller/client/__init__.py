"""The fleet from any machine over the controller's HTTP API, so the API's roles apply.

``edgefleet devices|models|plan|scores|commands|tokens`` never open the database.
"""
