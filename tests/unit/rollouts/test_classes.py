from compilers.target import Target
from lwm2m_server.rollouts.classes import UNKNOWN, class_name


def test_class_names_spell_out_the_target() -> None:
    m4 = Target(160 * 1024, 512 * 1024, fpu=True).to_dict()
    assert class_name(m4, ["cortex-m4f"]) == "cortex-m4f-160k-512k-fpu"
    assert class_name(m4, ["cortex-m4f", "cortex-m33", None]) == "cortex-m33+cortex-m4f-160k-512k-fpu"
    assert class_name(m4) == "160k-512k-fpu"
    npu = Target(256 * 1024, 1 << 20, fpu=False, accelerator="ethos-u55-128", ops=frozenset({"CONV_2D"})).to_dict()
    assert class_name(npu, ["cortex-m55"]) == "cortex-m55-256k-1m-nofpu-ethos-u55-128-1ops"
    assert class_name(None) == UNKNOWN


def test_a_target_that_is_not_a_compiler_target_falls_back() -> None:
    assert class_name({"ram": 1}, ["cortex-m4f"], fallback="abc123") == "abc123"
