"""Start-up: seconds from the command to the first prediction, and to a serving server's readiness.

    python bench/startup.py [--runs 5] [--write]

Side by side, each a fresh process, in alternating order, medians of --runs:
  fmkit predict MODEL 10 lines     torch backend (a linear-probe model on the default MiniLM)
  fmkit predict INT8 10 lines      the same model exported with `fmkit export --quantize int8`
  transformers pipeline            `pipeline("text-classification", model=<MiniLM folder>)` on the same lines,
                                   what a user scripting it by hand would run
  fmkit serve (torch, int8)        until GET /ready answers 200
"Time to first prediction" is when the first output line reaches the parent's pipe.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import ISSUE2_SECTION, REPO, SHARED, WORK, machine, sst2_subset

FMKIT = [sys.executable, "-m", "fmkit"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "FMKIT_PROGRESS": "0"}
SECTION = "## Start-up (issue 23)"


def prepare() -> tuple[Path, Path, Path, Path]:
    """(torch model, int8 export, 10-line input, MiniLM folder), built once under .bench/."""
    from fmkit.models.backbone import resolve_model_path

    train, dev = sst2_subset(400)
    model_run, int8 = WORK / "startup_run", WORK / "startup_int8"
    if not (model_run / "model" / "fmkit.json").is_file():
        subprocess.run([*FMKIT, "train", "--data", str(train), "--output", str(model_run), "--overwrite", "--quiet",
                        "--strategy", "linear-probe"], check=True, env=ENV, cwd=REPO)
    if not (int8 / "fmkit.json").is_file():
        subprocess.run([*FMKIT, "export", str(model_run / "model"), "--format", "onnx", "--quantize", "int8",
                        "--output", str(int8)], check=True, env=ENV, cwd=REPO)
    lines = WORK / "startup_10.txt"
    sentences = [row.split("\t", 1)[1] for row in dev.read_text(encoding="utf-8").splitlines()[1:11]]
    lines.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return model_run / "model", int8, lines, resolve_model_path("all-MiniLM-L6-v2")


def first_line_seconds(command: list[str]) -> tuple[float, float]:
    """(seconds to the first stdout line, seconds to exit)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=REPO, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    first = time.perf_counter() - start
    proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"{command} failed")
    return first, time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready_seconds(model: Path) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([*FMKIT, "serve", str(model), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV, cwd=REPO)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("fmkit serve exited")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


PIPELINE = ("import sys\nfrom transformers import pipeline\n"
            "p = pipeline('text-classification', model=sys.argv[1], device='cpu')\n"
            "lines = open(sys.argv[2]).read().splitlines()\n"
            "for r in p(lines, batch_size=32): print(r, flush=True)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    model, int8, lines, minilm = prepare()
    cases = {
        "fmkit predict, torch": lambda: first_line_seconds([*FMKIT, "predict", str(model), str(lines), "--backend", "torch"]),
        # The model's precision is auto: bf16 on a CPU with native bf16, fp32 elsewhere (what an AVX2 user runs).
        "fmkit predict, torch fp32": lambda: first_line_seconds([*FMKIT, "predict", str(model), str(lines), "--backend",
                                                                 "torch", "--precision", "fp32"]),
        "fmkit predict, int8 ONNX": lambda: first_line_seconds([*FMKIT, "predict", str(int8), str(lines)]),
        "transformers pipeline script": lambda: first_line_seconds([sys.executable, "-c", PIPELINE, str(minilm), str(lines)]),
        "fmkit serve, torch (to /ready)": lambda: (ready_seconds(model), float("nan")),
        "fmkit serve, int8 ONNX (to /ready)": lambda: (ready_seconds(int8), float("nan")),
    }
    for case in cases.values():  # warm the page cache once; not counted
        case()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for i in range(args.runs):
        order = list(cases) if i % 2 == 0 else list(reversed(cases))
        for name in order:
            results[name].append(cases[name]())
    load = os.getloadavg()[0]
    rows = []
    for name, values in results.items():
        first = statistics.median(v[0] for v in values)
        total = statistics.median(v[1] for v in values)
        rows.append(f"| {name} | {first:.2f} s | {'-' if total != total else f'{total:.2f} s'} |")
        print(rows[-1])
    text = "\n".join([
        f"Machine: {machine()}; all threads; 1-minute load at the end {load:.2f}. Medians of {args.runs} runs per row, "
        "fresh processes in alternating order after one uncounted warm-up (page cache warm).",
        f"Command: `python bench/startup.py --runs {args.runs} --write`. Model: linear probe on MiniLM "
        "(400 SST-2 rows), int8 = `fmkit export --quantize int8`; input: 10 SST-2 dev sentences.",
        "",
        "| command | first prediction (serve: ready) | exit |",
        "|---|---|---|",
        *rows,
    ])
    print(text)
    if args.write:
        path = REPO / "BENCHMARKS.md"
        content = path.read_text()
        if SECTION not in content:
            content = content.replace(ISSUE2_SECTION, f"{SECTION}\n\n(pending)\n\n{ISSUE2_SECTION}", 1)
            path.write_text(content)
        from bench._common import write_subsection

        write_subsection(SECTION, "### Time to first prediction", text)


if __name__ == "__main__":
    assert SHARED.is_dir(), f"{SHARED}: the shared datasets are needed"
    main()
