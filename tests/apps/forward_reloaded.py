"""A Forward whose upstream is read from a file at import: a SIGHUP reload's new workers
import it again, so changing the file changes the layer's upstreams (test_forward_metrics)."""

import os

from ferrogate.middleware import Forward

with open(os.environ["FORWARD_UPSTREAM_FILE"]) as upstream_file:
    app = Forward([upstream_file.read().strip()])
