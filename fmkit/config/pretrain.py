"""`fmkit pretrain`: continued masked-language-model pretraining on unlabelled text."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PretrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    mlm_probability: float = Field(
        0.15, gt=0, lt=1, description="Share of tokens masked (BERT: 80% [MASK], 10% random, 10% kept)."
    )
    eval_texts: int = Field(
        500, ge=1, description="Texts held out (at most 10% of the corpus) for the perplexity that picks the best checkpoint."
    )
    head_warmup_epochs: float = Field(
        0.5, ge=0, description="When the backbone ships no masked-LM head (sentence encoders such as all-MiniLM-L6-v2): "
        "epochs that train only the new head, body frozen, before the body trains; a random head's first gradients "
        "would otherwise reshape the body. 0 skips it.",
    )
