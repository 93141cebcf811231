"""opkit: a client-go-style framework for Kubernetes operators."""

__all__: list[str] = []
