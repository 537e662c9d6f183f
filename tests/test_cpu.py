"""The portable build: flags read from the CPU, the wheel's key, the library's real build
features against this CPU's, and llama.cpp's default thread count."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import llama_cpp
import pytest

import ezchat as ez
from ezchat.engine import cpu
from ezchat.engine.model import llama_system_info

ROOT = Path(__file__).resolve().parent.parent

# /proc/cpuinfo flags of the two kinds of machine this project runs on
AMD_EPYC_AVX512 = frozenset(
    [
        "fpu",
        "sse",
        "sse2",
        "pni",
        "ssse3",
        "fma",
        "sse4_1",
        "sse4_2",
        "avx",
        "f16c",
        "bmi1",
        "avx2",
        "bmi2",
        "avx512f",
        "avx512dq",
        "avx512cd",
        "avx512bw",
        "avx512vl",
        "avx512vbmi",
        "avx512_vnni",
        "avx512_bf16",
    ]
)
INTEL_XEON_AMX = AMD_EPYC_AVX512 | {"avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "avx512_fp16"}


def options(args: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("-D").split("=", 1) for arg in args if arg.startswith("-D"))


def test_the_pin_in_pyproject_is_the_one_the_build_uses():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("llama-cpp-python")]
    assert pins == [f"llama-cpp-python=={cpu.LLAMA_CPP_PYTHON_VERSION}"]
    assert llama_cpp.__version__ == cpu.LLAMA_CPP_PYTHON_VERSION


@pytest.mark.skipif(not cpu.is_x86(), reason="the instruction-set flags are x86's")
def test_an_intel_cpu_with_amx_gets_every_instruction_set_but_amx():
    set_ = options(cpu.cmake_args(INTEL_XEON_AMX, extra=[]))
    assert set_["GGML_NATIVE"] == "OFF"
    for option in ("GGML_AVX512", "GGML_AVX512_VNNI", "GGML_AVX512_BF16", "GGML_AVX_VNNI"):
        assert set_[option] == "ON"
    for option in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert set_[option] == "OFF"
    # every instruction-set option is named, so nothing the compiler knows leaks in
    assert {isa.option for isa in cpu.X86_INSTRUCTION_SETS if isa.option} <= set(set_)


@pytest.mark.skipif(not cpu.is_x86(), reason="the instruction-set flags are x86's")
def test_avx512_needs_all_five_of_its_flags():
    partial = AMD_EPYC_AVX512 - {"avx512vl"}
    assert options(cpu.cmake_args(partial, extra=[]))["GGML_AVX512"] == "OFF"
    avx2_only = frozenset(["sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"])
    set_ = options(cpu.cmake_args(avx2_only, extra=[]))
    assert set_["GGML_AVX2"] == "ON" and set_["GGML_AVX512"] == "OFF"


def test_opt_in_flags_come_after_ezchats_and_amx_beyond_the_cpu_is_named(monkeypatch):
    amx = ["-DGGML_AMX_TILE=ON", "-DGGML_AMX_INT8=ON"]
    args = cpu.cmake_args(INTEL_XEON_AMX, extra=amx)
    assert args[-2:] == amx  # later -D wins in CMake
    assert cpu.features_beyond_cpu(args, INTEL_XEON_AMX) == []
    assert cpu.features_beyond_cpu(cpu.cmake_args(AMD_EPYC_AVX512, extra=amx), AMD_EPYC_AVX512) == [
        "GGML_AMX_TILE",
        "GGML_AMX_INT8",
    ]
    monkeypatch.setenv(cpu.EXTRA_ARGS_VARIABLE, "-DGGML_CUDA=ON")
    assert cpu.extra_args() == ["-DGGML_CUDA=ON"]
    assert cpu.cmake_args()[-1] == "-DGGML_CUDA=ON"


def test_check_refuses_flags_this_cpu_cannot_run(monkeypatch, capsys):
    lacking = next(
        (
            isa
            for isa in cpu.X86_INSTRUCTION_SETS
            if isa.option and not set(isa.cpu_flags) <= cpu.cpu_flags()
        ),
        None,
    )
    if lacking is None or not cpu.is_x86():
        pytest.skip("this CPU has every instruction set ggml knows")
    monkeypatch.setenv(cpu.EXTRA_ARGS_VARIABLE, f"-D{lacking.option}=ON")
    assert cpu.main(["check"]) == 2
    assert lacking.option in capsys.readouterr().err
    monkeypatch.delenv(cpu.EXTRA_ARGS_VARIABLE)
    assert cpu.main(["check"]) == 0


def test_the_key_changes_with_the_flags_and_only_with_them():
    base = cpu.cmake_args(INTEL_XEON_AMX, extra=[])
    assert cpu.build_key(base) == cpu.build_key(list(base))
    assert cpu.build_key(base) != cpu.build_key(cpu.cmake_args(AMD_EPYC_AVX512, extra=[]))
    assert cpu.build_key(base) != cpu.build_key([*base, "-DGGML_CUDA=ON"])


def test_the_installed_library_uses_only_what_this_cpu_has_and_no_amx():
    """llama.cpp's own system-info line against /proc/cpuinfo: what was built runs here."""
    info = llama_system_info()
    built = cpu.built_features(info)
    if cpu.is_x86():
        assert "AVX" in built, info  # the line was read at all
    assert cpu.cpu_lacks(built) == [], (info, sorted(cpu.cpu_flags()))
    asked = " ".join(cpu.extra_args())
    if "AMX" not in asked:
        assert not [name for name in built if name.startswith("AMX")], info


def test_system_info_parsing_keeps_instruction_sets_only():
    line = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 0 | AMX_INT8 = 1 | LLAMAFILE = 1 | REPACK = 1 |"
    assert cpu.built_features(line) == ["SSE3", "SSSE3", "AVX", "AMX_INT8"]
    assert cpu.cpu_lacks(["AVX", "AMX_INT8"], AMD_EPYC_AVX512) == ["AMX_INT8"]


# --- threads -------------------------------------------------------------------------------------


def fake_sysfs(root: Path, siblings: list[str], p_cores: str | None = None) -> Path:
    """A /sys/devices tree with one thread_siblings_list per CPU (real files, read as sysfs)."""
    for number, group in enumerate(siblings):
        topology = root / "system" / "cpu" / f"cpu{number}" / "topology"
        topology.mkdir(parents=True)
        (topology / "thread_siblings_list").write_text(group + "\n")
    if p_cores is not None:
        (root / "cpu_core").mkdir(parents=True)
        (root / "cpu_core" / "cpus").write_text(p_cores + "\n")
    return root


def test_cpu_lists_as_the_kernel_writes_them():
    assert cpu.parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert cpu.parse_cpu_list("") == set()


def test_threads_are_physical_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    smt = fake_sysfs(tmp_path / "smt", ["0,2", "1,3", "0,2", "1,3"])
    chosen = cpu.default_thread_count(smt)
    assert chosen.count == 2 and "2 threads per core" in chosen.how
    plain = fake_sysfs(tmp_path / "plain", ["0", "1", "2", "3"])
    assert cpu.default_thread_count(plain).count == 4


def test_the_app_leaves_its_drawing_a_cpu_only_where_the_model_would_take_them_all(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    two_cores = fake_sysfs(tmp_path / "two", ["0", "1"])
    assert cpu.default_thread_count(two_cores).count == 2
    chosen = cpu.app_thread_count(two_cores)
    assert chosen.count == 1 and "less one for the app's drawing" in chosen.how
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    smt = fake_sysfs(tmp_path / "smt", ["0,2", "1,3", "0,2", "1,3"])
    assert cpu.app_thread_count(smt).count == 2  # the siblings are free for the drawing
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    one = fake_sysfs(tmp_path / "one", ["0"])
    assert cpu.app_thread_count(one).count == 1


def test_threads_on_a_hybrid_intel_are_its_p_cores(tmp_path, monkeypatch):
    # 2 P-cores with SMT (CPUs 0-3) and 4 E-cores (4-7)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    hybrid = fake_sysfs(tmp_path, ["0-1", "0-1", "2-3", "2-3", "4", "5", "6", "7"], "0-3")
    chosen = cpu.default_thread_count(hybrid)
    assert chosen.count == 2 and "P-cores" in chosen.how


def test_threads_count_only_cpus_this_process_may_use(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1})
    tree = fake_sysfs(tmp_path, ["0", "1", "2", "3"])
    assert cpu.default_thread_count(tree).count == 1


def test_a_model_loaded_with_no_thread_count_uses_llamas_rule_for_both_kinds_of_work(model_path):
    chosen = cpu.default_thread_count()
    model = ez.Model(model_path, context_length=256)
    try:
        params = model.llama.context_params
        assert model.n_threads == chosen.count
        assert int(params.n_threads) == int(params.n_threads_batch) == chosen.count
        assert model.threads_how == chosen.how
    finally:
        model.unload()
    given = ez.Model(model_path, context_length=256, n_threads=1)
    try:
        assert int(given.llama.context_params.n_threads_batch) == 1
        assert given.threads_how == "given"
    finally:
        given.unload()
