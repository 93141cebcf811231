"""The embedded Kubernetes API server (private modules; public API in opkit.testing)."""
