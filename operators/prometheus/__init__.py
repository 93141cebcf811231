"""The Prometheus operator (Prometheus, ServiceMonitor, PodMonitor, ...); built on opkit."""

__all__: list[str] = []
