"""Greedy decoding speed: batched ``greedy_decode`` vs a per-sequence loop like the reference.

The reference's ``predict_phrase`` decoded one sequence at a time and ran the whole model
(encoder included) once per output character, 32 times. ``greedy_decode`` runs the encoder once
per batch and the decoder at most 32 times per batch. Both use the same weights in the same run;
the script checks that they predict the same phrases and prints sequences/s and the ratio.

    .venv/bin/python benchmarks/decode.py              # default model size
    .venv/bin/python benchmarks/decode.py --quick      # tiny model, seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and few sequences")
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"))
    parser.add_argument("--sequences", type=int, help="sequences decoded in batches")
    parser.add_argument("--loop-sequences", type=int, help="sequences decoded one at a time")
    parser.add_argument("--batch-size", type=int, default=256, help="greedy_decode batch size")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import numpy as np

    from aslfr_lib.decoding import greedy_decode, ids_to_phrases
    from aslfr_lib.model import ModelConfig, build_model
    from aslfr_lib.vocab import PAD, TARGET_LENGTH

    if args.quick:
        config = ModelConfig(encoder_dim=32, decoder_dim=32, encoder_blocks=1, decoder_blocks=1)
        sequences, loop_sequences = args.sequences or 128, args.loop_sequences or 4
    else:
        config = ModelConfig()
        sequences, loop_sequences = args.sequences or 512, args.loop_sequences or 8
    keras.utils.set_random_seed(args.seed)
    model = build_model(config)
    rng = np.random.default_rng(args.seed)
    for weight in model.trainable_weights:  # untrained zero embeddings would all decode alike
        if not np.any(keras.ops.convert_to_numpy(weight)):
            weight.assign(rng.normal(0.0, 0.02, weight.shape).astype(np.float32))
    frames = rng.normal(size=(sequences, config.frames, config.features)).astype(np.float32)
    lengths = rng.integers(config.frames // 4, config.frames, size=sequences)
    for row, length in enumerate(lengths):
        frames[row, length:] = 0.0  # padded tails, as after preprocessing

    def reference_loop(one_sequence: np.ndarray) -> np.ndarray:
        """The reference's predict_phrase: full model per character, no early stop."""
        phrase = np.full((1, TARGET_LENGTH), PAD, dtype=np.int32)
        for index in range(TARGET_LENGTH):
            logits = model.predict_on_batch({"frames": one_sequence[None], "phrase": phrase})
            phrase[0, index] = int(np.argmax(logits[0, index]))
        return phrase[0]

    # Warm up both paths (compilation is not decoding speed).
    reference_loop(frames[0])
    greedy_decode(model, frames[: args.batch_size], args.batch_size)

    started = time.perf_counter()
    looped = np.stack([reference_loop(frames[i]) for i in range(loop_sequences)])
    loop_seconds = time.perf_counter() - started
    started = time.perf_counter()
    batched = greedy_decode(model, frames, args.batch_size)
    batched_seconds = time.perf_counter() - started

    same = ids_to_phrases(looped) == ids_to_phrases(batched[:loop_sequences])
    loop_rate = loop_sequences / loop_seconds
    batched_rate = sequences / batched_seconds
    print(f"backend {keras.backend.backend()}, model {'quick' if args.quick else 'default'}")
    print(f"per-sequence loop : {loop_rate:9.2f} sequences/s ({loop_sequences} sequences)")
    print(
        f"batched greedy    : {batched_rate:9.2f} sequences/s ({sequences} sequences, "
        f"batch {args.batch_size})"
    )
    print(f"speed-up          : {batched_rate / loop_rate:9.1f}x")
    print(f"same phrases      : {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
