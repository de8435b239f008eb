"""The character language model in the beam search: what it reads on trained runs, per style.

    .venv/bin/python benchmarks/language_model.py \\
        --run default=RUNS/default-s42:data/robustness/default-6000-p120/processed-mf1 \\
        --run idiolect=RUNS/idiolect-s42:data/robustness/idiolect-6000-p120/processed-mf1 \\
        [--fusions 0.5/1.0,0.25/0.5,1.0/2.0] [--beam 5] [--out outputs/bench-lm]

Each ``--run NAME=RUN_FOLDER:PROCESSED`` is a trained run (``aslfr train``, e.g. the runs of
``benchmarks/robustness.py``) and the processed folder it trained on. Per run the benchmark fits
the language model ``aslfr train`` writes (``language_model.fit`` on the processed training
split; the run's own ``language_model.npz`` when it has one) and decodes the held-out split in
Keras (``aslfr_lib.evaluation.evaluate``: every held-out sequence, the handless ones through the
run's fallback phrase) with greedy CTC, the CTC beam alone (the baseline of ``ratio``) and the
beam with each weight/bonus of ``--fusions``. The exported model runs the same search on the same
int16 table (tests hold its phrases equal to Keras's), so the numbers carry over to
``model.tflite`` up to its int8 weights. It also prints the model's bits per character on the
held-out phrases: how much of the spelling it predicts.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/language_model.py` from a checkout
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from aslfr_lib import atomic  # noqa: E402

DEFAULT_FUSIONS = "0.5/1.0"


def parse_run(text: str) -> tuple[str, Path, Path]:
    name, _, rest = text.partition("=")
    run, _, processed = rest.rpartition(":")
    if not (name and run and processed):
        raise argparse.ArgumentTypeError(f"expected NAME=RUN_FOLDER:PROCESSED, got {text!r}")
    return name, Path(run), Path(processed)


def parse_fusions(text: str) -> list[tuple[float, float]]:
    fusions = []
    for item in text.split(","):
        weight, _, bonus = item.partition("/")
        fusions.append((float(weight), float(bonus or 0.0)))
    return fusions


def bits_per_character(model, targets) -> float:
    from aslfr_lib.decoding import ids_to_phrases
    from aslfr_lib.vocab import CHAR_TO_ID

    phrases = [p for p in ids_to_phrases(targets) if p]
    total = sum(model.phrase_log_prob([CHAR_TO_ID[c] for c in p]) for p in phrases)
    return -total / sum(len(p) + 1 for p in phrases) / math.log(2)  # + 1: each EOS


def score_run(name: str, run: Path, processed: Path, fusions, beam: int) -> list[dict]:
    from aslfr_lib import fallback, language_model
    from aslfr_lib.checkpoints import load_checkpoint
    from aslfr_lib.data import load_training_data
    from aslfr_lib.evaluation import evaluate, model_path
    from aslfr_lib.model import model_frames

    model = load_checkpoint(model_path(run))
    data = load_training_data(processed, frames=model_frames(model))
    X, y = data.split("val")
    run_fallback = fallback.load(run)
    hand_frames = data.ragged("val").lengths
    if (run / language_model.LANGUAGE_MODEL_FILE).is_file():
        fitted = language_model.load(run)
    else:
        fitted = language_model.fit_processed(processed)
    bits = bits_per_character(fitted, y)
    rows = []
    decoders = [("ctc", None), ("ctc_beam", None)] + [("ctc_beam", f) for f in fusions]
    for decoder, fusion in decoders:
        fused = fitted.fused(*fusion) if fusion else None
        started = time.perf_counter()
        result = evaluate(
            model, X, y, None, 256, 0, False, decoder, run_fallback, hand_frames,
            None if decoder == "ctc" else beam,
            language_model=fused,
        )  # fmt: skip
        rows.append(
            {
                "run": name,
                "decoder": decoder if fusion is None else f"{decoder} + lm {fusion[0]}/{fusion[1]}",
                "score": result.score,
                "sequences": len(y),
                "seconds": round(time.perf_counter() - started, 1),
                "lm_bits_per_character": round(bits, 3),
            }
        )
        print(f"{name}: {rows[-1]['decoder']}: {result.score:.4f}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| run | decoder | held-out score | ratio to ctc_beam | LM bits/char |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for row in rows:
        base = next(
            r["score"] for r in rows if r["run"] == row["run"] and r["decoder"] == "ctc_beam"
        )
        ratio = f"{row['score'] / base:.3f}" if base else "-"  # a run that reads nothing
        lines.append(
            f"| {row['run']} | {row['decoder']} | {row['score']:.4f} | {ratio} | "
            f"{row['lm_bits_per_character']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=parse_run, action="append", required=True)
    parser.add_argument("--fusions", type=parse_fusions, default=parse_fusions(DEFAULT_FUSIONS),
                        help="weight/bonus pairs, comma-separated")  # fmt: skip
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--out", default="outputs/bench-lm")
    args = parser.parse_args(argv)
    rows = []
    for name, run, processed in args.run:
        rows += score_run(name, run, processed, args.fusions, args.beam)
    out = Path(args.out)
    atomic.write_json(out / "results.json", rows)
    atomic.write_text(out / "language_model.md", table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
