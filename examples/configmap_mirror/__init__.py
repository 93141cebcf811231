"""ConfigMapMirror: an example operator built on opkit (see :mod:`.mirror`).

Run it against any cluster (or ``python -m opkit.testing apiserver``)::

    python -m examples.configmap_mirror --kubeconfig PATH
"""

from examples.configmap_mirror.mirror import (
    ENABLED_LABEL,
    MIRROR_LABEL,
    NAME,
    SOURCE_ANNOTATION,
    TARGET_LABEL,
    MirrorReconciler,
    main,
    setup,
)

__all__ = [
    "ENABLED_LABEL",
    "MIRROR_LABEL",
    "NAME",
    "SOURCE_ANNOTATION",
    "TARGET_LABEL",
    "MirrorReconciler",
    "main",
    "setup",
]
