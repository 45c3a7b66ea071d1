"""Session set-up shared by all test modules."""

import os

from models.stage import use_private_pytensor_dirs

# PyTensor's numba linker writes one generated source file per compiled function into the
# system temporary directory and never removes it; keep the suite's in a directory of its own.
if "generated_src_dir" not in os.environ.get("PYTENSOR_FLAGS", ""):
    use_private_pytensor_dirs("generated_src_dir")
