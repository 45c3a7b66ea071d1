"""Session set-up shared by all test modules."""

import atexit
import os
import shutil
import tempfile

# PyTensor's numba linker writes one generated source file per compiled function into the
# system temporary directory and never removes it; keep the suite's in a directory of its own.
# (Pipeline fits do the same in models.stage.use_private_compile_cache.)
if "generated_src_dir" not in os.environ.get("PYTENSOR_FLAGS", ""):
    _src = tempfile.mkdtemp(prefix="pytensor-src-")
    atexit.register(shutil.rmtree, _src, ignore_errors=True)
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        filter(None, [os.environ.get("PYTENSOR_FLAGS", ""), f"generated_src_dir={_src}"])
    )
