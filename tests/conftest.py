"""Shared test configuration.

The embedded control plane's fixtures (``apiserver``, ``kubeconfig``, ``kube_env``,
``kubectl``) come from opkit's pytest plugin, registered through the ``pytest11`` entry point
exactly as users get it; ``_server_fixtures`` adds the raw-HTTP helpers of the server tests.
"""

pytest_plugins = ["_server_fixtures"]
