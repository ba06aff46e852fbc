"""CLIP alignment: equal to torchmetrics' CLIPScore and to open_clip, offline, safe on bad images.

Models are tiny and random-initialised, written to temp dirs (tests/helpers/clip_fixtures.py);
nothing is downloaded.
"""

from __future__ import annotations

import base64
import copy
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genobs.evaluators.clip import ClipItem, ClipScorer
from genobs.evaluators.device import DeviceError, check_precision
from genobs.evaluators.images import ImageLimits
from genobs.evaluators.reference_models import (
    ReferenceModelError,
    ReferenceModelMissing,
    ReferenceModelSpec,
    check_available,
)
from helpers.clip_fixtures import save_random_open_clip, save_random_transformers_clip

PROMPTS = [
    "a photo of a cat",
    "a red sports car parked on a rainy street at night",
    "an astronaut riding a horse, oil painting",
    "two dogs",
    "a photo of a cat",  # repeated prompt: served from the prompt-embedding cache
    "a bowl of ramen with chopsticks, studio lighting, 4k",
]
LONG_PROMPT = " ".join(f"word{i}" for i in range(120))  # > 77 tokens


@pytest.fixture(autouse=True)
def _own_model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantised models go to a cache of the test's own, not the user's ~/.cache/genobs."""
    monkeypatch.setenv("GENOBS_CACHE_DIR", str(tmp_path / "genobs-cache"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clip")
    rng = np.random.default_rng(7)
    for i in range(len(PROMPTS) + 1):
        height, width = 30 + 9 * i, 48 + 5 * (i % 3)
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(root / f"img{i}.png")
    return root


@pytest.fixture(scope="module")
def hf_dirs(workdir: Path) -> list[Path]:
    """Two transformers CLIPs: a random one, and the same with its text projection negated,
    so that between them both signs of the cosine (and the clamp at 0) are exercised."""
    from transformers import AutoProcessor, CLIPModel

    first = save_random_transformers_clip(workdir / "hf", size="tiny", seed=0)
    flipped = workdir / "hf_flipped"
    model = CLIPModel.from_pretrained(first)
    with torch.no_grad():
        model.text_projection.weight.neg_()
    model.save_pretrained(flipped)
    AutoProcessor.from_pretrained(first).save_pretrained(flipped)
    return [first, flipped]


def _items(prompts: list[str]) -> list[ClipItem]:
    return [ClipItem(f"r{i}", p, f"img{i}.png") for i, p in enumerate(prompts)]


def test_transformers_backend_equals_torchmetrics_clipscore_per_sample(workdir: Path, hf_dirs: list[Path]) -> None:
    from torchmetrics.multimodal.clip_score import CLIPScore
    from torchvision.transforms.functional import pil_to_tensor
    from transformers import AutoProcessor, CLIPModel

    seen_positive = seen_clamped = False
    for directory in hf_dirs:
        scorer = ClipScorer(ReferenceModelSpec("transformers", str(directory)), device="cpu",
                            batch_size=4, num_workers=0, image_root=workdir)
        scorer.forward_chunk = 3  # batches of 4 go through the model as 3 + 1: results must not change
        results = scorer.score(_items(PROMPTS))
        model, processor = CLIPModel.from_pretrained(directory).eval(), AutoProcessor.from_pretrained(directory)
        metric = CLIPScore(model_name_or_path=lambda: (model, processor))
        for i, (prompt, result) in enumerate(zip(PROMPTS, results, strict=True)):
            assert result.error is None
            metric.reset()
            image = pil_to_tensor(Image.open(workdir / f"img{i}.png").convert("RGB"))
            metric.update(image, prompt)  # one sample: compute() is that sample's score
            expected = float(metric.compute())
            assert result.clip_score == pytest.approx(expected, abs=1e-4)
            assert result.clip_score == pytest.approx(100 * max(result.clip_cosine, 0.0), abs=1e-9)
            seen_positive |= expected > 0
            seen_clamped |= result.clip_cosine < 0 and expected == 0
    assert seen_positive and seen_clamped


def test_open_clip_backend_equals_direct_open_clip(workdir: Path, tiny_open_clip: Path) -> None:
    import open_clip

    prompts = PROMPTS + [LONG_PROMPT]
    scorer = ClipScorer(ReferenceModelSpec("open_clip", str(tiny_open_clip)), device="cpu",
                        batch_size=3, num_workers=1, image_root=workdir)
    results = scorer.score(_items(prompts))

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tiny_open_clip}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tiny_open_clip}")
    model.eval()
    with torch.no_grad():
        for i, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
            image = preprocess(Image.open(workdir / f"img{i}.png").convert("RGB")).unsqueeze(0)
            cosine = float(torch.nn.functional.cosine_similarity(model.encode_image(image),
                                                                 model.encode_text(tokenizer([prompt]))))
            assert result.clip_cosine == pytest.approx(cosine, abs=1e-5)
            assert result.clip_score == pytest.approx(100 * max(cosine, 0.0), abs=1e-4)


def test_long_prompt_is_truncated_keeping_end_token_and_flagged(workdir: Path, hf_dirs: list[Path]) -> None:
    from transformers import AutoProcessor, CLIPModel

    directory = hf_dirs[0]
    scorer = ClipScorer(ReferenceModelSpec("transformers", str(directory)), device="cpu",
                        num_workers=0, image_root=workdir)
    short, long = scorer.score([ClipItem("short", PROMPTS[0], "img0.png"), ClipItem("long", LONG_PROMPT, "img0.png")])
    assert "prompt_truncated" not in short.details
    assert long.details["prompt_truncated"] is True
    assert long.details["context_length"] == 77 and long.details["prompt_tokens"] > 77

    # The reference: transformers' own truncation, which keeps <|endoftext|> as the last token.
    model, processor = CLIPModel.from_pretrained(directory).eval(), AutoProcessor.from_pretrained(directory)
    tokens = processor.tokenizer([LONG_PROMPT], truncation=True, max_length=77, return_tensors="pt")
    assert tokens["input_ids"][0, -1].item() == processor.tokenizer.eos_token_id
    pixels = processor(images=Image.open(workdir / "img0.png").convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        cosine = float(torch.nn.functional.cosine_similarity(
            model.get_image_features(pixel_values=pixels), model.get_text_features(**tokens)))
    assert long.clip_cosine == pytest.approx(cosine, abs=1e-5)


def test_bad_samples_get_reasons_and_the_rest_is_scored(workdir: Path, tiny_open_clip: Path, tmp_path: Path) -> None:
    (tmp_path / "ok.png").write_bytes((workdir / "img0.png").read_bytes())
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    Image.new("RGB", (400, 400)).save(tmp_path / "big.png")  # 160k pixels > limit below
    (tmp_path / "huge.bin").write_bytes(b"\0" * 300_000)  # over the byte limit below
    buffer = io.BytesIO()
    Image.open(workdir / "img1.png").save(buffer, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    items = [
        ClipItem("ok", "a cat", "ok.png"),
        ClipItem("missing", "a cat", "nope.png"),
        ClipItem("corrupt", "a cat", "corrupt.png"),
        ClipItem("bomb", "a cat", "big.png"),
        ClipItem("too-many-bytes", "a cat", "huge.bin"),
        ClipItem("no-prompt", "  ", "ok.png"),
        ClipItem("no-image", "a cat", None),
        ClipItem("escape", "a cat", "../../etc/passwd"),
        ClipItem("data-uri", "a cat", data_uri),
        ClipItem("file-uri", "a cat", (tmp_path / "ok.png").as_uri()),
    ]
    scorer = ClipScorer(ReferenceModelSpec("open_clip", str(tiny_open_clip)), device="cpu", batch_size=4,
                        num_workers=1, image_root=tmp_path,
                        limits=ImageLimits(max_bytes=200_000, max_pixels=100_000))
    results = {r.request_id: r for r in scorer.score(items)}
    assert [r for r in results] == [i.request_id for i in items]
    for good in ("ok", "data-uri", "file-uri"):
        assert results[good].error is None and results[good].clip_cosine is not None
    assert results["file-uri"].clip_cosine == pytest.approx(results["ok"].clip_cosine, abs=1e-6)
    expected_reasons = {
        "missing": "not found",
        "corrupt": "not a readable image",
        "bomb": "over the limit of 100000",
        "too-many-bytes": "over the limit of 200000",
        "no-prompt": "no prompt",
        "no-image": "no image",
        "escape": "outside the image root",
    }
    for request_id, reason in expected_reasons.items():
        assert results[request_id].clip_score is None
        assert reason in (results[request_id].error or ""), (request_id, results[request_id].error)
    # data: URIs are stored once, content-addressed, under the image root.
    stored = list((tmp_path / "_blobs" / "sha256").rglob("*.png"))
    assert len(stored) == 1 and stored[0].read_bytes() == buffer.getvalue()


def test_random_weights_only_when_asked_and_recorded(workdir: Path, tiny_open_clip: Path) -> None:
    spec = ReferenceModelSpec("open_clip", "ViT-B-32", pretrained="none")
    assert spec.identifier == "open_clip:ViT-B-32@random-init"
    scorer = ClipScorer(ReferenceModelSpec("open_clip", str(tiny_open_clip), pretrained="none"), device="cpu",
                        num_workers=0, image_root=workdir)
    result = scorer.score([ClipItem("r0", "a cat", "img0.png")])[0]
    assert scorer.reference_model.endswith("@random-init")
    assert result.details["random_weights"] is True


def test_missing_weights_say_which_model_where_and_how(tmp_path: Path) -> None:
    empty_cache = tmp_path / "hf-cache"
    empty_cache.mkdir()
    with pytest.raises(ReferenceModelMissing) as caught:
        check_available(ReferenceModelSpec("open_clip", "ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(empty_cache)))
    message = str(caught.value)
    assert "open_clip:ViT-B-32/laion2b_s34b_b79k" in message
    assert str(empty_cache) in message and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
    assert "hf download" in message and "evaluators.clip.pretrained" in message

    with pytest.raises(ReferenceModelMissing, match="openai/clip-vit-base-patch32"):
        check_available(ReferenceModelSpec("transformers", "openai/clip-vit-base-patch32", cache_dir=str(empty_cache)))

    weightless = tmp_path / "weightless"
    save_random_open_clip(weightless)
    (weightless / "open_clip_model.safetensors").unlink()
    with pytest.raises(ReferenceModelMissing, match="open_clip_model.safetensors"):
        check_available(ReferenceModelSpec("open_clip", str(weightless)))
    # ...and the scorer refuses it too rather than running on random weights.
    with pytest.raises(ReferenceModelMissing):
        ClipScorer(ReferenceModelSpec("open_clip", str(weightless)), device="cpu")

    with pytest.raises(ReferenceModelError, match="not a pretrained tag"):
        check_available(ReferenceModelSpec("open_clip", "ViT-B-32", "no-such-tag"))
    with pytest.raises(ReferenceModelError, match="backend"):
        ReferenceModelSpec("tensorflow", "x")


def test_open_clip_checkpoint_file_for_a_registered_architecture(tmp_path: Path) -> None:
    """``model: <registered name>`` with ``pretrained: <checkpoint file>`` loads that file (no hub)."""
    import json

    import open_clip
    from safetensors.torch import save_file

    from genobs.evaluators.clip_backends import load_clip_backend
    from helpers.clip_fixtures import _open_clip_model_cfg

    (tmp_path / "genobs-tiny-test.json").write_text(json.dumps(_open_clip_model_cfg("tiny")))
    open_clip.add_model_config(tmp_path / "genobs-tiny-test.json")  # open_clip's custom-config registry
    torch.manual_seed(3)
    model = open_clip.create_model("genobs-tiny-test", load_weights=False)
    checkpoint = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    spec = ReferenceModelSpec("open_clip", "genobs-tiny-test", str(checkpoint))
    check_available(spec)
    backend = load_clip_backend(spec, torch.device("cpu"))
    for name, tensor in backend.model.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    with pytest.raises(ReferenceModelMissing, match="missing.safetensors"):
        check_available(ReferenceModelSpec("open_clip", "genobs-tiny-test", str(tmp_path / "missing.safetensors")))


@pytest.mark.parametrize("backend", ["transformers", "open_clip"])
def test_int8_precision_is_explicit_recorded_and_close_to_fp32(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    """precision int8: a separate quantised copy of the model, recorded in every row, and its
    scores within a bound of the fp32 ones (ViT-B/32-sized models, random weights, as in the bench)."""
    if backend == "transformers":
        directory = save_random_transformers_clip(tmp_path_factory.mktemp("int8"), "vit-b-32", weights=False)
        spec = ReferenceModelSpec(backend, str(directory), pretrained="none")
    else:
        spec = ReferenceModelSpec(backend, "ViT-B-32", pretrained="none")
    exact = ClipScorer(spec, device="cpu", batch_size=4, num_workers=0, image_root=workdir)
    int8 = ClipScorer(spec, device="cpu", batch_size=4, num_workers=0, image_root=workdir, precision="int8")
    assert int8.backend is not exact.backend
    # int8: both encoders run in ONNX Runtime with int8 matrix products; fp32 has none of that
    assert int8.backend.int8_image.int8_matmuls > 0 and int8.backend.int8_text.int8_matmuls > 0
    assert exact.backend.int8_image is None and exact.backend.int8_text is None
    assert exact.reference_model == spec.identifier
    assert int8.reference_model == f"{spec.identifier}+int8"  # never stored as the same series as fp32

    items = _items(PROMPTS)
    reference, quantised = exact.score(items), int8.score(items)
    deltas = []
    for ref, got in zip(reference, quantised, strict=True):
        assert ref.details["precision"] == "fp32" and got.details["precision"] == "int8"
        assert got.clip_score == pytest.approx(100 * max(got.clip_cosine, 0.0), abs=1e-9)
        deltas.append(abs(got.clip_cosine - ref.clip_cosine))
    # The bench measures max |delta cosine| ~0.007 (0.7 clip_score points) on 256 images.
    assert max(deltas) < 0.02 and float(np.mean(deltas)) < 0.01, deltas
    assert max(deltas) > 0  # it is really a different computation


def test_precision_setting_is_checked() -> None:
    assert check_precision("auto", torch.device("cpu")) == "auto"
    assert check_precision("int8", torch.device("cpu")) == "int8"
    with pytest.raises(DeviceError, match="CPU"):
        check_precision("int8", torch.device("cuda"))
    with pytest.raises(DeviceError, match="expected one of auto, int8"):
        check_precision("fp16", torch.device("cpu"))


def test_clip_image_transform_equals_the_transformers_processor_bit_for_bit(hf_dirs: list[Path]) -> None:
    """The fast preprocessing (PIL resize + crop, one lookup table for rescale and normalise)
    gives exactly the pixels of transformers' CLIPImageProcessor, padding and odd sizes included."""
    from transformers import AutoProcessor, CLIPImageProcessor

    from genobs.evaluators.clip_backends import _CLIPImageTransform, _HFImageTransform

    rng = np.random.default_rng(11)
    sizes = [(512, 512), (224, 224), (225, 223), (100, 700), (700, 100), (5, 9), (4, 300), (300, 4),
             (1000, 37), (37, 1000), (224, 10), (10, 224), (31, 33), (3, 50), (50, 3), (641, 479)]
    for processor in (CLIPImageProcessor(), AutoProcessor.from_pretrained(hf_dirs[0]).image_processor):
        fast = _CLIPImageTransform.for_processor(processor)
        assert fast is not None
        reference = _HFImageTransform(processor)
        for width, height in sizes:
            image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
            got, expected = fast(image), reference(image)
            assert got.dtype == expected.dtype and torch.equal(got, expected), (width, height)
    # a configuration it does not reproduce is left to the processor
    assert _CLIPImageTransform.for_processor(CLIPImageProcessor(do_center_crop=False)) is None


def test_cpu_decode_threads_give_the_same_scores_as_decoding_inline(workdir: Path, hf_dirs: list[Path]) -> None:
    spec = ReferenceModelSpec("transformers", str(hf_dirs[0]))
    items = _items(PROMPTS) + [ClipItem("missing", "a cat", "nope.png")]
    inline = ClipScorer(spec, device="cpu", batch_size=4, num_workers=0, image_root=workdir).score(items)
    threaded = ClipScorer(spec, device="cpu", batch_size=4, num_workers=3, image_root=workdir)
    assert threaded.num_workers == 3
    for a, b in zip(inline, threaded.score(items), strict=True):
        assert (a.request_id, a.clip_cosine, a.error) == (b.request_id, b.clip_cosine, b.error)
    assert inline[-1].error and "not found" in inline[-1].error
    # the default on the CPU: one decode thread per torch thread
    assert ClipScorer(spec, device="cpu", image_root=workdir).num_workers == torch.get_num_threads()


def test_patch_embedding_as_matmul_equals_the_convolution() -> None:
    from genobs.evaluators.onnx_int8 import PatchEmbeddingAsMatMul, patch_embeddings_as_matmul

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 16, kernel_size=8, stride=8, bias=True)
    model = torch.nn.Sequential(conv, torch.nn.Conv2d(16, 4, kernel_size=3, padding=1))  # not a patch embedding
    rewritten = copy.deepcopy(model)
    assert patch_embeddings_as_matmul(rewritten) == 1
    assert isinstance(rewritten[0], PatchEmbeddingAsMatMul) and isinstance(rewritten[1], torch.nn.Conv2d)
    with torch.no_grad():
        for height, width in ((32, 32), (35, 41)):  # divisible, and not (the conv drops the remainder)
            x = torch.randn(2, 3, height, width)
            torch.testing.assert_close(rewritten(x), model(x), rtol=1e-5, atol=1e-5)


def test_class_token_only_last_layer_equals_get_image_features(hf_dirs: list[Path]) -> None:
    from transformers import CLIPModel

    from genobs.evaluators.clip_backends import _HFImage

    model = CLIPModel.from_pretrained(hf_dirs[0]).eval()
    pixels = torch.randn(3, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    with torch.inference_mode():
        torch.testing.assert_close(_HFImage(model)(pixels), model.get_image_features(pixel_values=pixels),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(_HFImage(model, class_token_only=False)(pixels),
                                   model.get_image_features(pixel_values=pixels), rtol=0, atol=0)


def test_int8_quantised_models_are_kept_between_loads_and_keyed_by_their_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quantising is most of an int8 load: its result is kept on disk and used again only
    for the same exported graph (same weights); an unwritable cache only costs time."""
    from genobs.evaluators.onnx_int8 import OnnxInt8Encoder, cache_dir

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 8)).eval()
    example = {"x": torch.randn(2, 32)}
    x = torch.randn(5, 32)

    first = OnnxInt8Encoder(module, example, {"x": [0]})
    again = OnnxInt8Encoder(module, example, {"x": [0]})
    assert (first.from_cache, again.from_cache) == (False, True)
    assert torch.equal(first(x=x), again(x=x))
    assert len(list(cache_dir().glob("*.onnx"))) == 1 and cache_dir().is_relative_to(tmp_path)

    changed = copy.deepcopy(module)
    with torch.no_grad():
        changed[0].weight[0, 0] += 1.0
    other = OnnxInt8Encoder(changed, example, {"x": [0]})
    assert not other.from_cache
    assert not torch.equal(other(x=x), first(x=x))
    assert len(list(cache_dir().glob("*.onnx"))) == 2

    # a cache that cannot be written (a file where its folder should be): still works
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    monkeypatch.setenv("GENOBS_CACHE_DIR", str(blocked))
    uncached = OnnxInt8Encoder(module, example, {"x": [0]})
    assert not uncached.from_cache and torch.equal(uncached(x=x), first(x=x))
