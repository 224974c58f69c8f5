"""Helpers shared by the benchmark scripts: shared-data paths, subsets, timing, peak memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
WORK = REPO / ".bench"  # scratch space, git-ignored


def sst2_subset(n: int, seed: int = 0) -> tuple[Path, Path]:
    """A fixed n-row subset of SST-2 train (TSV, header label/sentence) and the dev file."""
    import pandas as pd

    WORK.mkdir(exist_ok=True)
    out = WORK / f"sst2_train_{n}_{seed}.tsv"
    if not out.exists():
        df = pd.read_csv(SHARED / "sst2/SST-2/train.tsv", sep="\t", quoting=3, dtype=str, keep_default_na=False)
        df = df.sample(n=n, random_state=seed) if n < len(df) else df
        df[["sentence", "label"]].to_csv(out, sep="\t", index=False, quoting=3)
    return out, SHARED / "sst2/SST-2/dev.tsv"


def run_child(code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run `python -c code args` in a fresh process; return the JSON it prints on its last line.

    The child reports its own peak RSS (see `peak_rss_mb`), so runs do not inherit each other's memory.
    """
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result.setdefault("process_wall_s", round(wall, 1))
    return result


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_class() -> str:
    """The CPU class a result holds for: native bf16 (AMX / AVX512-BF16), AVX-512, or AVX2 only."""
    try:
        flags = " " + " ".join(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except OSError:
        return "unknown CPU class"
    if " amx_bf16" in flags or " avx512_bf16" in flags:
        return "native bf16 (AMX/AVX512-BF16)"
    if " avx512f" in flags:
        return "AVX-512, no bf16"
    return "AVX2 only, no bf16" if " avx2" in flags else "no AVX2"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu_class()}, Python {platform.python_version()}"


ISSUE2_SECTION = "## Core: fine-tuning against the Hugging Face Trainer (issue 2)"


def write_subsection(section_heading: str, marker: str, text: str) -> None:
    """Put `marker` + `text` into BENCHMARKS.md under `section_heading`, replacing an older copy."""
    path = REPO / "BENCHMARKS.md"
    content = path.read_text()
    start = content.index(section_heading)
    end = content.index("\n## ", start + 5)
    section = content[start:end]
    block = f"{marker}\n\n{text}"
    if marker in section:
        s2 = section.index(marker)
        e2 = section.find("\n### ", s2 + 5)
        section = section[:s2] + block + ("" if e2 == -1 else section[e2:])
    else:
        section = section.replace("(pending)\n", "").rstrip() + "\n\n" + block
    path.write_text(content[:start] + section.rstrip() + "\n" + content[end:])
