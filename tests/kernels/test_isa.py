"""ISA selection: OPENTRANSFORMER_ISA at load, ot_set_isa at run time."""
import os
import subprocess
import sys

import pytest

from opentransformer.kernels import ops


def isa_in_subprocess(value: str) -> str:
    env = {**os.environ, "OPENTRANSFORMER_ISA": value, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = "from opentransformer.kernels import ops; print(ops.isa())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           check=True).stdout.strip()


def test_env_forces_generic():
    assert isa_in_subprocess("generic") == "generic"


def test_env_unknown_falls_back_to_best():
    assert isa_in_subprocess("no-such-isa") == ops.available_isas()[-1]


def test_available_lists_generic_first_and_includes_active():
    available = ops.available_isas()
    assert available[0] == "generic"
    assert ops.isa() in available


def test_set_isa_unknown_raises_and_keeps_current():
    before = ops.isa()
    with pytest.raises(ValueError):
        ops.set_isa("no-such-isa")
    assert ops.isa() == before


def test_threads_default_and_set():
    before = ops.threads()
    assert before >= 1
    ops.set_threads(1)
    assert ops.threads() == 1
    ops.set_threads(before)
