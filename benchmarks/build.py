"""The portable build against ``-march=native``: llama.cpp's ``llama-bench`` built both ways from
the same source, decode (tg128) and prompt processing (pp512) tokens/s, paired round by round,
each with llama.cpp's default threads.

ezchat builds llama.cpp with ``GGML_NATIVE=OFF`` and this CPU's instruction sets named one by
one, AMX left out (``ezchat/engine/cpu.py``). What that costs against the native build is the
difference between the two columns; on a CPU with AMX the native build may not run at all.

    python benchmarks/build.py
"""

from __future__ import annotations

import llama_bench
from common import default_model_path, median, print_table

from ezchat.engine import cpu

VARIANTS = (llama_bench.PORTABLE, llama_bench.NATIVE)


def main(rounds: int = 5) -> dict[str, float]:
    path = default_model_path()
    for variant in VARIANTS:
        if llama_bench.ensure_built(variant=variant) is None:
            print(f"\n(build: llama-bench could not be built {variant}; no figures)")
            return {}
    decode: dict[str, list[float]] = {v: [] for v in VARIANTS}
    prompt: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            tg = llama_bench.decode_tokens_per_second(
                path, None, 128, repetitions=1, variant=variant
            )
            pp = llama_bench.prompt_tokens_per_second(path, None, 512, variant=variant)
            if tg is not None and pp is not None:
                decode[variant].append(tg)
                prompt[variant].append(pp)
    if not all(decode.values()):
        print("\n(build: a llama-bench run failed; no figures)")
        return {}
    portable_tg, native_tg = median(decode["portable"]), median(decode["native"])
    portable_pp, native_pp = median(prompt["portable"]), median(prompt["native"])
    print_table(
        f"portable build vs -march=native, llama-bench, default threads, median of {rounds} "
        f"paired rounds; CPU {cpu.cpu_model()} ({' '.join(cpu.cpu_instruction_sets())})",
        ["build", "tg128 tokens/s", "pp512 tokens/s", "tg / native", "pp / native"],
        [
            ["portable (ezchat's)", portable_tg, portable_pp, portable_tg / native_tg,
             portable_pp / native_pp],
            ["-march=native (llama-cpp-python's default)", native_tg, native_pp, 1.0, 1.0],
        ],
    )  # fmt: skip
    return {"portable_tg": portable_tg, "native_tg": native_tg}


if __name__ == "__main__":
    main()
