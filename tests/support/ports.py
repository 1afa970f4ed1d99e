"""Free loopback ports and waiting for a listener (the product's helpers, re-exported)."""

from controller.demo.ports import free_port, wait_for_port

__all__ = ["free_port", "wait_for_port"]
