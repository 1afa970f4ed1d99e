"""The edgefleet agent: runs a 4-bit model on a device and reports over MQTT."""

__version__ = "0.1.0"
