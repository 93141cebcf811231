"""``python -m examples.configmap_mirror --kubeconfig PATH``."""

import sys

from examples.configmap_mirror import main

sys.exit(main())
