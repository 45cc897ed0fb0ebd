"""Console scripts: the server, the probe, the engine emulator and the demo."""
