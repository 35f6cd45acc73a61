"""What bounds the CUDA chunk kernels on an H100, read from its sm_90 machine code (no GPU needed).

For each built-in objective: compile both chunk kernels to PTX (numba-cuda
and NVVM), assemble them for sm_90 with nvJitLink (the registers and spills
ptxas reports), disassemble them with nvdisasm, and count the instructions of
the loop that draws the samples and, in the shared kernel, of the loop inside
it that adds the drawn samples' terms for a cell. From those, a ceiling on
(cell-)samples per second:

* issue: an SM issues one instruction per clock for each of its 4 warp
  schedulers, 32 threads each: 132 SMs x 128 x 1.98 GHz = 3.3e13 thread-instructions/s;
* FP64 pipe: an H100 SXM SM executes 64 FP64 operations per clock (DFMA, DMUL,
  DADD alike): 132 SMs x 64 x 1.98 GHz = 1.67e13 per second;
* occupancy from the registers per thread (65536 per SM, 2048 threads at most),
  which says how much latency the warps can hide, not a rate.

The counts are of the code, not of its execution: a rarely taken path inside
the loop (the slow paths of sqrt and of cos's range reduction) counts, and a
loop inside the counted one counts once.

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


def instructions_and_loops(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The opcodes of a disassembly, and its loops as (first, last) instruction indices."""
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
    return [op for op, _ in instrs], loops


def sample_loop(ops: list[str], loops: list[tuple[int, int]]) -> tuple[int, int]:
    """The loop that draws the samples: the smallest loop holding a Philox block's wide multiplies.

    Of Philox's 20 multiplies one or two depend only on the replicate and are
    hoisted out of the loop; 15 or more mark the loop that draws the samples.
    """
    philox = [r for r in loops if sum(op.startswith("IMAD.WIDE") for op in ops[r[0] : r[1] + 1]) >= 15]
    return min(philox, key=lambda r: r[1] - r[0])


def term_loop(ops: list[str], loops: list[tuple[int, int]], outer: tuple[int, int]) -> tuple[int, int]:
    """The loop inside ``outer`` that reads the shared normals (LDS) and adds the terms."""
    inner = [r for r in loops if outer[0] < r[0] and r[1] < outer[1] and "LDS" in {op.split(".")[0] for op in ops[r[0] : r[1] + 1]}]
    assert len(inner) == 1, inner
    return inner[0]


def fp64(ops: list[str]) -> int:
    return sum(op.split(".")[0] in FP64 for op in ops)


def build(objective, ptx: str) -> tuple[list[str], list[str], list[tuple[int, int]]]:
    """A kernel's PTX assembled for sm_90: the table's first columns (objective, registers,
    spilled bytes, occupancy), its opcodes and its loops."""
    binary, log = cubin(ptx)
    registers = int(re.search(r"Used (\d+) registers", log).group(1))
    spills = sum(int(x) for x in re.findall(r"(\d+) bytes spill (?:stores|loads)", log))
    head = [objective.formula, str(registers), str(spills), f"{occupancy(registers, gpu.THREADS):.0%}"]
    return head, *instructions_and_loops(sass(binary))


def occupancy(registers: int, threads: int) -> float:
    per_warp = -(-registers * 32 // 256) * 256  # registers are allocated per warp in units of 256
    warps = threads // 32
    blocks = min(65536 // (per_warp * warps), 2048 // threads, 32)
    return blocks * threads / 2048


OBJECTIVES = ("square", {"name": "quadratic", "k": 1.0}, {"name": "exp_quadratic", "k": 1.0}, {"name": "cos", "k": 1.0})
#: Cells per block of the shared kernel on a grid of 128 cells or more (gpu.tile_cells).
TILE = gpu.tile_cells(1 << 20, gpu.THREADS)


def main() -> None:
    print("# The CUDA chunk kernels on sm_90, from their machine code\n")
    print("Written by `make gpu-static` (`python bench/gpu_static.py`); no GPU involved. Ceilings for an H100")
    print(f"SXM: instruction issue {ISSUE_PER_S:.3g} thread-instructions/s, FP64 {FP64_PER_S:.3g} operations/s.\n")
    print("## One cell per stream\n")
    print("`_chunk_sums` runs chunks with a block each; `_chunk_sums_per_thread` runs chunks of at most")
    print(f"{gpu.SMALL * gpu.THREADS} samples with a thread each. One iteration of the sample loop draws one Philox block")
    print("(two samples) and adds their terms.\n")
    print(
        "| objective | kernel | registers | spills (bytes) | occupancy | loop instructions | FP64 ops | IMAD.WIDE | UMOV | ULDC | "
        "issue ceiling (samples/s) | FP64 ceiling (samples/s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    shared_rows = []
    for spec in OBJECTIVES:
        objective = make_objective(spec)
        texts = gpu.ptx(objective, cc=(9, 0))
        for kernel in ("_chunk_sums", "_chunk_sums_per_thread"):
            head, ops, loops = build(objective, texts[kernel])
            first, last = sample_loop(ops, loops)
            body = ops[first : last + 1]
            count = collections.Counter(op.split(".")[0] for op in body)
            row = [
                head[0],
                f"`{kernel}`",
                *head[1:],
                str(len(body)),
                str(fp64(body)),
                str(sum(op.startswith("IMAD.WIDE") for op in body)),
                str(count["UMOV"]),
                str(count["ULDC"]),
                f"{2 * ISSUE_PER_S / len(body):.3g}",
                f"{2 * FP64_PER_S / fp64(body):.3g}",
            ]
            print("| " + " | ".join(row) + " |")
        shared_rows.append(shared_row(objective, texts["_chunk_sums_shared"]))
    print("\n## Common random numbers (`_chunk_sums_shared`)\n")
    print(f"A block of {gpu.THREADS} threads draws {gpu.THREADS} Philox blocks per pass into shared memory, once, and")
    print(f"adds their {2 * gpu.THREADS} samples' terms for each of a tile of up to {TILE} cells (one cell per thread")
    print(f"when the group has {TILE} cells or more). Per cell-sample that costs (draw instructions) / {2 * TILE}")
    print("+ (term loop instructions); the ceilings are in cell-samples per second for a full tile.\n")
    print(
        "| objective | registers | spills (bytes) | occupancy | draw instructions per pass | FP64 ops | "
        "term loop instructions | FP64 ops | issue ceiling (cell-samples/s) | FP64 ceiling (cell-samples/s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in shared_rows:
        print("| " + " | ".join(row) + " |")


def shared_row(objective, ptx: str) -> list[str]:
    head, ops, loops = build(objective, ptx)
    outer = sample_loop(ops, loops)
    inner = term_loop(ops, loops, outer)
    terms = ops[inner[0] : inner[1] + 1]
    draws = ops[outer[0] : inner[0]] + ops[inner[1] + 1 : outer[1] + 1]
    per_cell_sample = len(draws) / (2 * TILE) + len(terms)
    fp64_per_cell_sample = fp64(draws) / (2 * TILE) + fp64(terms)
    return [
        *head,
        str(len(draws)),
        str(fp64(draws)),
        str(len(terms)),
        str(fp64(terms)),
        f"{ISSUE_PER_S / per_cell_sample:.3g}",
        f"{FP64_PER_S / fp64_per_cell_sample:.3g}",
    ]


if __name__ == "__main__":
    main()
