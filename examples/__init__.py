"""Small, complete operators built only on opkit's public API (run with ``python -m``)."""
