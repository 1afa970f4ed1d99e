"""`edgefleet doctor`: what is wrong on an agent or controller host, each finding with its fix."""
