"""What bounds the CUDA chunk kernel on an H100, read from its sm_90 machine code (no GPU needed).

For each built-in objective: compile the kernel to PTX (numba-cuda and NVVM),
assemble it for sm_90 with nvJitLink (the registers and spills ptxas reports),
disassemble it with nvdisasm, and count the instructions in the body of the
sample loop (the largest loop). From those, a ceiling on samples per second:

* issue: an SM issues one instruction per clock for each of its 4 warp
  schedulers, 32 threads each: 132 SMs x 128 x 1.98 GHz = 3.3e13 thread-instructions/s;
* FP64 pipe: an H100 SXM SM executes 64 FP64 operations per clock (DFMA, DMUL,
  DADD alike): 132 SMs x 64 x 1.98 GHz = 1.67e13 per second;
* occupancy from the registers per thread (65536 per SM, 2048 threads at most),
  which says how much latency the warps can hide, not a rate.

``UMOV`` counts moves of literals into uniform registers: 64-bit constants
that a DFMA cannot take as an immediate, two moves each, redone on every use
in the loop. ``ULDC`` counts loads of kernel arguments into uniform registers,
one each: the polynomial coefficients of log and sin/cos arrive that way
(:data:`gradsweep.elementary.COEFFICIENTS`).

    make gpu-static      # or: python bench/gpu_static.py > results/GPU_STATIC.md

Needs the ``cuda`` extra and ``pip install nvidia-cuda-nvdisasm``.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from gradsweep import gpu
from gradsweep.objectives import make_objective

SMS, ISSUE_PER_SM_CLOCK, FP64_PER_SM_CLOCK, CLOCK_HZ = 132, 4 * 32, 64, 1.98e9
ISSUE_PER_S = SMS * ISSUE_PER_SM_CLOCK * CLOCK_HZ
FP64_PER_S = SMS * FP64_PER_SM_CLOCK * CLOCK_HZ
FP64 = ("DFMA", "DMUL", "DADD")


def cubin(ptx: str, arch: str = "sm_90") -> tuple[bytes, str]:
    from cuda.bindings import nvjitlink

    data = ptx.encode()
    h = nvjitlink.create(2, [f"-arch={arch}", "-verbose"])
    try:
        nvjitlink.add_data(h, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
        nvjitlink.complete(h)
        out = bytearray(nvjitlink.get_linked_cubin_size(h))
        nvjitlink.get_linked_cubin(h, out)
        log = bytearray(nvjitlink.get_info_log_size(h))
        nvjitlink.get_info_log(h, log)
    finally:
        nvjitlink.destroy(h)
    return bytes(out), log.decode(errors="replace")


def nvdisasm() -> str:
    import nvidia

    for root in nvidia.__path__:
        for exe in Path(root).rglob("nvdisasm"):
            return str(exe)
    sys.exit("nvdisasm not found: pip install nvidia-cuda-nvdisasm")


def sass(binary: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(binary)
        f.flush()
        return subprocess.run([nvdisasm(), f.name], check=True, capture_output=True, text=True).stdout


def loop_body(text: str) -> list[str]:
    """Opcodes of the sample loop: the smallest loop holding a Philox block's wide multiplies.

    Of Philox's 20 multiplies one or two depend only on the replicate and are
    hoisted out of the loop; 15 or more mark the loop that draws the samples.
    """
    labels, instrs = {}, []
    for line in text.splitlines():
        if m := re.match(r"\s*(\.L_x_\d+):", line):
            labels[m.group(1)] = len(instrs)
        elif m := re.match(r"\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)(.*)", line):
            instrs.append((m.group(1), m.group(2)))
    loops = []
    for i, (op, rest) in enumerate(instrs):
        t = re.search(r"`\((\.L_x_\d+)\)", rest)
        if op.startswith("BRA") and t and labels.get(t.group(1), i + 1) <= i:
            loops.append((labels[t.group(1)], i))
    philox = [r for r in loops if sum(op.startswith("IMAD.WIDE") for op, _ in instrs[r[0] : r[1] + 1]) >= 15]
    start, stop = min(philox, key=lambda r: r[1] - r[0])
    return [op for op, _ in instrs[start : stop + 1]]


def occupancy(registers: int, threads: int) -> float:
    per_warp = -(-registers * 32 // 256) * 256  # registers are allocated per warp in units of 256
    warps = threads // 32
    blocks = min(65536 // (per_warp * warps), 2048 // threads, 32)
    return blocks * threads / 2048


def main() -> None:
    print("# The CUDA chunk kernel on sm_90, from its machine code\n")
    print("Written by `make gpu-static` (`python bench/gpu_static.py`); no GPU involved. One iteration of")
    print("the sample loop draws one Philox block (two samples). Ceilings for an H100 SXM: instruction issue")
    print(f"{ISSUE_PER_S:.3g} thread-instructions/s, FP64 {FP64_PER_S:.3g} operations/s.\n")
    print(
        "| objective | registers | spills (bytes) | occupancy | loop instructions | FP64 ops | IMAD.WIDE | UMOV | ULDC | "
        "issue ceiling (samples/s) | FP64 ceiling (samples/s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in ("square", {"name": "quadratic", "k": 1.0}, {"name": "exp_quadratic", "k": 1.0}, {"name": "cos", "k": 1.0}):
        objective = make_objective(spec)
        chunk_ptx, _ = gpu.ptx(objective, cc=(9, 0))
        binary, log = cubin(chunk_ptx)
        registers = int(re.search(r"Used (\d+) registers", log).group(1))
        spills = sum(int(x) for x in re.findall(r"(\d+) bytes spill (?:stores|loads)", log))
        ops = loop_body(sass(binary))
        body = collections.Counter(op.split(".")[0] for op in ops)
        wide = sum(op.startswith("IMAD.WIDE") for op in ops)
        fp64 = sum(body[op] for op in FP64)
        row = [
            objective.formula,
            str(registers),
            str(spills),
            f"{occupancy(registers, gpu.THREADS):.0%}",
            str(len(ops)),
            str(fp64),
            str(wide),
            str(body["UMOV"]),
            str(body["ULDC"]),
            f"{2 * ISSUE_PER_S / len(ops):.3g}",
            f"{2 * FP64_PER_S / fp64:.3g}",
        ]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
