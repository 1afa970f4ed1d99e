"""Model files on the device: the store, downloads, assignment and the model being served."""
