"""`fmkit export MODEL_DIR --format onnx [--quantize int8] --output DIR [--verify FILE] [--force]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cmd_export(args: argparse.Namespace) -> int:
    from fmkit.inference.export import export_onnx

    report = export_onnx(Path(args.model_dir), Path(args.output), quantize=args.quantize, verify=args.verify,
                         text_column=args.text_column, label_column=args.label_column,
                         max_accuracy_drop=args.max_accuracy_drop, force=args.force, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"exported {args.model_dir} -> {report.output}/model.onnx ({report.quantization}, "
          f"{report.onnx_bytes / 1e6:.1f} MB); max logit difference vs torch {report.max_abs_logit_diff:.2g}")
    if report.agreement is not None:
        print(f"verified on {report.verify_file} ({report.examples} texts): agreement {report.agreement:.2%}, "
              f"accuracy {report.source_accuracy:.4f} -> {report.export_accuracy:.4f} "
              f"({report.accuracy_delta_points:+.2f} points)")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="export a saved classifier to ONNX (optionally int8) and verify it")
    p.add_argument("model_dir", help="saved classifier folder or the run directory holding it")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (only onnx for now)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none", help="dynamic int8 weights (onnxruntime)")
    p.add_argument("--output", required=True, help="folder for the exported model (replaced atomically)")
    p.add_argument("--verify", metavar="FILE", help="labelled file: measure agreement and accuracy change")
    p.add_argument("--text-column", help="column with the text in --verify (auto-detected if omitted)")
    p.add_argument("--label-column", help="column with the label in --verify (auto-detected if omitted)")
    p.add_argument("--max-accuracy-drop", type=float, default=1.0, metavar="POINTS",
                   help="refuse an int8 export losing more accuracy than this on --verify (default 1)")
    p.add_argument("--force", action="store_true", help="write the int8 export even past --max-accuracy-drop")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass while verifying (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the verification report as JSON")
    p.set_defaults(func=cmd_export)
