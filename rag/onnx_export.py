"""Export a local sentence-transformers model to ONNX, once, from its own folder (needs torch).

Only the transformer is exported (token embeddings out); tokenizing, mean pooling and L2
normalisation run at query time in :mod:`rag.onnx_encoder`, with the settings read here from the
model's own folder, so the ONNX path computes what ``SentenceTransformer.encode`` computes.
Plain fp32: dynamic int8 quantization moved embeddings to a mean cosine of 0.937 (issue 12).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from rag.errors import SettingsError

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "token_embeddings"


@dataclass(frozen=True)
class EncoderConfig:
    """What the encoder must reproduce besides the weights: truncation length and output size."""

    max_seq_length: int
    dimension: int


def read_encoder_config(model_dir: Path) -> EncoderConfig:
    """The model's truncation length and pooling, refusing a pipeline this encoder cannot reproduce."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        bert = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        pooling_module = next(m for m in modules if m["type"].endswith(".Pooling"))
        pooling = json.loads((model_dir / pooling_module["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise SettingsError(f"model folder {str(model_dir)!r} is not a sentence-transformers model "
                            f"({exc.__class__.__name__}); set RAG_ENCODER=sentence-transformers") from None
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise SettingsError(f"the ONNX encoder does mean pooling, the model in {str(model_dir)!r} uses "
                            f"{modes}; set RAG_ENCODER=sentence-transformers")
    return EncoderConfig(max_seq_length=int(bert["max_seq_length"]),
                         dimension=int(pooling["word_embedding_dimension"]))


def export_onnx(model_dir: Path, target: Path) -> str:
    """Write the model's transformer to ``target`` as ONNX; returns the exporter's name and version."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise SettingsError(f"exporting the model to ONNX needs torch and sentence-transformers ({exc}); "
                            "install the project (`make .venv/.installed`) or copy an existing export") from None

    transformer = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)[0].auto_model.eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    # The example batch has padding, so the traced graph keeps the attention-mask path that
    # padded batches need (an all-ones mask may be skipped by the attention implementation).
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    axes = {0: "batch", 1: "sequence"}
    # The tracer warns about shape checks it freezes; with dynamic axes and the padded example
    # they hold for every batch, which the equality test checks on padded and 256-token batches.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TokenEmbeddings(), (ids, mask, torch.zeros_like(ids)), str(target), dynamo=False,
                          opset_version=OPSET, input_names=list(INPUTS), output_names=[OUTPUT],
                          dynamic_axes={name: axes for name in (*INPUTS, OUTPUT)})
    return f"torch {torch.__version__} (TorchScript exporter, opset {OPSET})"
