"""opkit.testing: an embedded control plane for tests and the local demo."""
