"""setuptools: pyproject.toml says the rest. The hooks, units and templates live at the top of
the source tree, one copy each; a built package carries them in rrqctl/_shipped/."""

import shutil
from pathlib import Path

from setuptools import setup
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


setup(cmdclass={"build_py": BuildWithShippedFiles})
