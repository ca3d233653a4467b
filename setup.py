"""setuptools: pyproject.toml says the rest. The hooks, units and templates live at the top of
the source tree, one copy each; a built package carries them in rrqctl/_shipped/."""

import os
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

SHIPPED = ("hooks", "units", "templates")


class BuildWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # (an editable install reads them where they are)
            return
        for name in SHIPPED:
            target = Path(self.build_lib) / "rrqctl" / "_shipped" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(Path(__file__).parent / name, target)


# The datapath's common case in C (rrqctl/engine/fastpath.c, sealing in seal.c; the Python
# datapath is the reference and the fallback). Built with python3-dev, gcc and libssl-dev
# (libcrypto's ChaCha20-Poly1305); optional (without them rrqctl installs and runs on the
# Python datapath) unless RRQCTL_FASTPATH=required, as the Debian package's build sets it.
FASTPATH = Extension(
    "rrqctl.engine._fastpath",
    sources=["rrqctl/engine/fastpath.c", "rrqctl/engine/seal.c"],
    depends=["rrqctl/engine/seal.h"],
    libraries=["crypto"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
    optional=os.environ.get("RRQCTL_FASTPATH") != "required",
)

setup(cmdclass={"build_py": BuildWithShippedFiles}, ext_modules=[FASTPATH])
