"""Turn a pytest-benchmark JSON file into a Markdown table (stdout): ``summarize.py JSON [MAKE_COMMAND]``."""

import json
import sys

data = json.load(open(sys.argv[1]))
m = data["machine_info"]
cpu = m.get("cpu", {})
print("# Benchmarks\n")
made_by = sys.argv[2] if len(sys.argv) > 2 else "make bench"
print(f"Written by `{made_by}` (`pytest bench ... --benchmark-enable --benchmark-disable-gc`, then `python bench/summarize.py`;")
print("the Makefile has the whole commands).")
print("Times are the best round; Python's garbage collector is off while timing, as in `timeit`, so the test process's heap")
print("does not add its collections to a sweep's fixed cost.")
flags = set(cpu.get("flags", []))
simd = "AVX-512 (512-bit vectors)" if "avx512f" in flags else "AVX2 (256-bit vectors)" if "avx2" in flags else "no AVX2"
brand = cpu.get("brand_raw", m.get("processor", "?"))
print(f"Machine: {brand}, {cpu.get('count', '?')} logical cores, {simd}, Python {m['python_version']}.")
print("`threads` is numba's thread count; the numpy reference itself runs on one core.\n")
print("| group | benchmark | samples | best time (s) | samples/s | threads | notes |")
print("|---|---|---:|---:|---:|---:|---|")
for b in data["benchmarks"]:
    x = b["extra_info"]
    noted = ("device", "coordinates_per_s", "work_growth")
    shown = {k: v for k, v in x.items() if k.startswith(("ratio", "reference")) or k.endswith("_mb") or k in noted}
    notes = ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in shown.items())
    rate = x.get("samples_per_s", 0)
    row = [b["group"], b["name"], f"{x.get('samples', 0):.3g}", f"{b['stats']['min']:.3f}", f"{rate:.3g}", str(x.get("threads", "")), notes]
    print("| " + " | ".join(row) + " |")
