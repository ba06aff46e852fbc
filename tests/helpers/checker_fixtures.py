"""Tiny random-initialised reference models of each kind, written to a directory the way a user
would provide a real one (save_pretrained; for hhem a custom-code directory like Vectara's).

Built locally from transformers configs with a word-level tokenizer made here: nothing is
downloaded. Used by tests/test_claim_checkers.py and bench/bench_hallucination.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "</s>"]


def word_vocab(texts: list[str]) -> list[str]:
    words = sorted({w.lower() for t in texts for w in re.findall(r"\w+|[^\w\s]", t)})
    return SPECIALS + ["0", "1"] + [w for w in words if w not in ("0", "1")]


def save_tokenizer(directory: Path, vocab: list[str], pair_template: str = "bert", max_length: int = 128) -> None:
    """A fast word-level tokenizer (lower-cased words and punctuation) with character offsets."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    cls, sep, eos = vocab.index("[CLS]"), vocab.index("[SEP]"), vocab.index("</s>")
    if pair_template == "bert":
        tk.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
        )
        extra = {"cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}
    else:  # t5: text then </s>
        tk.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", eos)],
        )
        extra = {"eos_token": "</s>"}
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]",
                                   model_max_length=max_length, **extra)
    fast.save_pretrained(directory)


def _bert_config(vocab: list[str], **kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=256, pad_token_id=0, **kw)


def build_nli(directory: Path, texts: list[str], id2label: dict[int, str], bias: list[float] | None = None) -> Path:
    """A BERT cross-encoder with the given labels; `bias` fixes the classifier's output (weights
    zeroed) so a test knows which label a prediction must come from."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    vocab = word_vocab(texts)
    config = _bert_config(vocab, num_labels=len(id2label), id2label=id2label,
                          label2id={v: k for k, v in id2label.items()})
    model = BertForSequenceClassification(config).eval()
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(directory)
    save_tokenizer(directory, vocab)
    return directory


def build_minicheck_encoder(directory: Path, texts: list[str], arch: str) -> Path:
    """MiniCheck RoBERTa / DeBERTa style: two labels, LABEL_0 / LABEL_1 (1 = supported)."""
    torch.manual_seed(0)
    vocab = word_vocab(texts)
    common = dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=37, max_position_embeddings=260, pad_token_id=0, num_labels=2)
    if arch == "roberta":
        from transformers import RobertaConfig, RobertaForSequenceClassification

        model = RobertaForSequenceClassification(RobertaConfig(**common, type_vocab_size=2))
    else:
        from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

        model = DebertaV2ForSequenceClassification(DebertaV2Config(**common, type_vocab_size=2))
    model.save_pretrained(directory)
    save_tokenizer(directory, vocab)
    return directory


def _t5_config(vocab: list[str]):
    from transformers import T5Config

    return T5Config(vocab_size=len(vocab), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1,
                    num_heads=2, pad_token_id=0, eos_token_id=vocab.index("</s>"), decoder_start_token_id=0)


def build_minicheck_t5(directory: Path, texts: list[str]) -> Path:
    """MiniCheck Flan-T5 style: a seq2seq model answering "1" (supported) or "0"."""
    from transformers import T5ForConditionalGeneration

    torch.manual_seed(0)
    vocab = word_vocab([*texts, "premise: hypothesis:"])
    T5ForConditionalGeneration(_t5_config(vocab)).save_pretrained(directory)
    save_tokenizer(directory, vocab, pair_template="t5")
    return directory


HHEM_CONFIG_CODE = '''
from transformers import PretrainedConfig


class HHEMv2Config(PretrainedConfig):
    model_type = "HHEMv2"

    def __init__(self, foundation="google/flan-t5-base", prompt="<pad> Premise: {text1}\\nHypothesis: {text2}", t5=None, **kw):
        self.foundation = foundation
        self.prompt = prompt
        self.t5 = t5 or {}
        super().__init__(**kw)
'''

HHEM_MODEL_CODE = '''
import torch
from transformers import AutoTokenizer, PreTrainedModel, T5Config, T5EncoderModel

from .configuration_hhem_v2 import HHEMv2Config


class HHEMv2ForSequenceClassification(PreTrainedModel):
    """A tiny stand-in with HHEM-2.1-open's interface: a T5 encoder, a two-way head and
    predict(text_pairs) -> probability that the hypothesis is consistent with the premise."""

    config_class = HHEMv2Config

    def __init__(self, config):
        super().__init__(config)
        self.t5 = T5EncoderModel(T5Config(**config.t5))
        self.head = torch.nn.Linear(self.t5.config.d_model, 2)
        # like HHEM's own code (attribute name included): the tokenizer named by `foundation`
        self.tokenzier = AutoTokenizer.from_pretrained(config.foundation)
        self.post_init()

    def _init_weights(self, module):
        pass

    def forward(self, input_ids=None, attention_mask=None, **kw):
        hidden = self.t5(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[:, 0])

    def predict(self, text_pairs):
        texts = [self.config.prompt.format(text1=p, text2=h) for p, h in text_pairs]
        enc = self.tokenzier(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        with torch.no_grad():
            logits = self.forward(**enc)
        return torch.softmax(logits.float(), dim=-1)[:, 1]
'''


def build_hhem(directory: Path, texts: list[str]) -> Path:
    """A directory like vectara/hallucination_evaluation_model: config.json with auto_map, the
    model's own Python code, weights, and the T5 tokenizer its `foundation` names (a local path
    here; the real one names google/flan-t5-base, which must then be in the local HF cache)."""
    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = word_vocab([*texts, "<pad> Premise: Hypothesis:"])
    tok_dir = directory / "flan-t5-tokenizer"
    save_tokenizer(tok_dir, vocab, pair_template="t5")
    (directory / "configuration_hhem_v2.py").write_text(HHEM_CONFIG_CODE, encoding="utf-8")
    (directory / "modeling_hhem_v2.py").write_text(HHEM_MODEL_CODE, encoding="utf-8")
    t5 = _t5_config(vocab).to_dict()
    t5 = {k: t5[k] for k in ("vocab_size", "d_model", "d_ff", "d_kv", "num_layers", "num_heads", "pad_token_id", "eos_token_id")}
    config = {
        "architectures": ["HHEMv2ForSequenceClassification"],
        "model_type": "HHEMv2",
        "auto_map": {
            "AutoConfig": "configuration_hhem_v2.HHEMv2Config",
            "AutoModelForSequenceClassification": "modeling_hhem_v2.HHEMv2ForSequenceClassification",
        },
        "foundation": str(tok_dir),
        "prompt": "<pad> Premise: {text1}\nHypothesis: {text2}",
        "t5": t5,
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    from transformers import AutoConfig, AutoModelForSequenceClassification

    loaded = AutoConfig.from_pretrained(directory, trust_remote_code=True)
    model = AutoModelForSequenceClassification.from_config(loaded, trust_remote_code=True)
    model.save_pretrained(directory)
    return directory


def build_token_detector(directory: Path, texts: list[str], flagged: set[str], id2label: dict[int, str] | None = None) -> Path:
    """LettuceDetect-style token classifier whose output is known: no transformer layers, so each
    token's label depends on the token alone; the words in `flagged` come out "hallucinated"."""
    from transformers import BertForTokenClassification

    torch.manual_seed(0)
    vocab = word_vocab(texts)
    id2label = id2label or {0: "supported", 1: "hallucinated"}
    halluc = next(i for i, v in id2label.items() if v != "supported")
    config = _bert_config(vocab, num_labels=2, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    config.num_hidden_layers = 0
    model = BertForTokenClassification(config).eval()
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.word_embeddings.weight.normal_(0.0, 0.1)
        emb.word_embeddings.weight[:, 0] = -1.0
        for w in flagged:
            emb.word_embeddings.weight[vocab.index(w.lower()), 0] = 4.0
        emb.LayerNorm.weight.fill_(1.0)
        emb.LayerNorm.bias.zero_()
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.weight[halluc, 0] = 3.0
    model.save_pretrained(directory)
    save_tokenizer(directory, vocab)
    return directory
