"""Real CPU faults for tests: code that makes the process that runs it die by a signal.

Nothing is simulated: the process really reads address 0 (SIGSEGV), executes an
undefined instruction (SIGILL) or touches a mapped page past the end of its file
(SIGBUS), as a miscompiled or wrongly targeted llama.cpp would.
"""

from __future__ import annotations

import sys
from pathlib import Path

SEGFAULT = "import ctypes; ctypes.string_at(0)"
ILLEGAL_INSTRUCTION = """
import ctypes, mmap, platform
code = b"\\x0f\\x0b" if platform.machine() == "x86_64" else b"\\x00\\x00\\x00\\x00"  # ud2 / udf #0
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
address = ctypes.addressof(ctypes.c_char.from_buffer(page))
ctypes.CFUNCTYPE(None)(address)()
"""
BUS_ERROR = """
import mmap, os, tempfile
fd, name = tempfile.mkstemp()
os.write(fd, b"x" * mmap.PAGESIZE * 2)
view = mmap.mmap(fd, mmap.PAGESIZE * 2)
os.ftruncate(fd, 0)
os.unlink(name)
view[mmap.PAGESIZE]
"""
FAULTS = {"SIGSEGV": SEGFAULT, "SIGILL": ILLEGAL_INSTRUCTION, "SIGBUS": BUS_ERROR}


def crash_on_import(directory: Path, module: str, fault: str) -> Path:
    """A directory that, put on a Python's PYTHONPATH, makes it die by ``fault`` when it
    imports ``module`` (a ``sitecustomize`` import hook); processes without it are untouched."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class _Fault(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r}:\n"
        f"            exec({FAULTS[fault]!r})\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Fault())\n"
    )
    return directory


def python_dying_by(fault: str) -> list[str]:
    """A command line whose process dies by ``fault``."""
    return [sys.executable, "-c", FAULTS[fault]]
