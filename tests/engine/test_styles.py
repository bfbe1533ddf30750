"""Style LoRAs: both key layouts, LRU, rescan, and refusal of every kind of bad file."""

from __future__ import annotations

import io
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bot.errors import GenerationFailed
from bot.texts import refused_reason
from engine.executors import LocalExecutor
from engine.pipeline import Engine, render
from engine.style_library import StyleLibrary
from engine.styles import LoraRefused, check_lora_file, read_header, style_dir
from engine.tiny import LORA_TARGETS, tiny_lora
from tests.engine.conftest import no_progress, spec

MANIFEST = 'name_en = "{n}"\nname_zh = "测试"\ndescription = "test"\nstrength = 0.9\n'


def targets(engine: Engine) -> list[str]:
    return sorted(n for n in engine.styles.linears if n.endswith(LORA_TARGETS))


def add_style(
    root: Path, name: str, tensors: dict[str, torch.Tensor] | None, raw: bytes = b""
) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "style.toml").write_text(MANIFEST.format(n=name), encoding="utf-8")
    path = folder / f"{name}.safetensors"
    if tensors is not None:
        save_file(tensors, str(path))
    else:
        path.write_bytes(raw)
    return path


def good(engine: Engine, seed: int, *, kohya: bool = False) -> dict[str, torch.Tensor]:
    return tiny_lora(targets(engine), engine.styles.linears, seed=seed, kohya=kohya)


@pytest.fixture
def library(engine: Engine, tmp_path: Path) -> Iterator[StyleLibrary]:
    """A style library over an empty temporary folder, swapped into the shared engine."""
    original = engine.styles
    original.unload_all(engine.pipe)
    lib = StyleLibrary(tmp_path / "loras", original.linears, max_resident=2)
    (tmp_path / "loras").mkdir()
    engine.styles = lib
    yield lib
    lib.unload_all(engine.pipe)
    engine.styles = original


def image(engine: Engine, style: str | None) -> bytes:
    return render(engine, spec(style=style), no_progress).image.tobytes()


def test_kohya_and_diffusers_layouts_give_identical_images(
    engine: Engine, library: StyleLibrary
) -> None:
    add_style(library.lora_dir, "diff", good(engine, 5, kohya=False))
    add_style(library.lora_dir, "kohya", good(engine, 5, kohya=True))
    library.rescan(engine.pipe)
    assert sorted(library.styles) == ["diff", "kohya"]
    assert image(engine, "diff") == image(engine, "kohya")
    assert image(engine, "diff") != image(engine, None)


def test_every_real_layout_gives_the_canonical_image(engine: Engine, library: StyleLibrary) -> None:
    from tests.engine.test_lora_keys import LAYOUTS, random_lora, tensors_for

    weights = random_lora(library.linears, 4, 11)
    canonical = {f"transformer.{m}.lora_A.weight": a for m, (a, _) in weights.items()}
    canonical |= {
        f"transformer.{m}.lora_B.weight": (b.float() * 2).to(torch.bfloat16)
        for m, (_, b) in weights.items()
    }
    add_style(library.lora_dir, "canonical", canonical)
    names = {f"layout{i}": layout for i, layout in enumerate(LAYOUTS)}
    for name, layout in names.items():
        add_style(library.lora_dir, name, tensors_for(layout, weights, 2.0))
    library.rescan(engine.pipe)
    assert library.refused == {}
    want = image(engine, "canonical")
    assert want != image(engine, None)
    for name, layout in names.items():
        assert image(engine, name) == want, layout


def test_lru_cap_evicts_the_least_recently_used(engine: Engine, library: StyleLibrary) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        add_style(library.lora_dir, name, good(engine, 30 + i))
    library.rescan(engine.pipe)
    first_a = image(engine, "a")
    image(engine, "b")
    image(engine, "a")
    image(engine, "c")  # evicts b, the least recently used
    assert library.resident == ["a", "c"]
    assert image(engine, "b") != first_a
    assert library.resident == ["c", "b"]
    assert image(engine, "a") == first_a  # reloaded after eviction: same image


def test_rescan_picks_up_new_and_removed_styles(engine: Engine, library: StyleLibrary) -> None:
    add_style(library.lora_dir, "one", good(engine, 40))
    library.rescan(engine.pipe)
    image(engine, "one")
    assert library.resident == ["one"]
    add_style(library.lora_dir, "two", good(engine, 41))
    shutil.rmtree(library.lora_dir / "one")
    library.rescan(engine.pipe)
    assert sorted(library.styles) == ["two"]
    assert library.resident == []  # the removed style's adapter is gone from the model
    assert image(engine, "two") != image(engine, None)


def test_changed_file_is_reloaded_on_rescan(engine: Engine, library: StyleLibrary) -> None:
    path = add_style(library.lora_dir, "s", good(engine, 50))
    library.rescan(engine.pipe)
    before = image(engine, "s")
    save_file(good(engine, 51), str(path))
    library.rescan(engine.pipe)
    assert image(engine, "s") != before


def wrong_shapes(engine: Engine) -> dict[str, torch.Tensor]:
    t = good(engine, 60)
    key = next(k for k in t if k.endswith("lora_A.weight"))
    t[key] = torch.zeros(4, 3584)  # the real 20B model's joint dim: a LoRA for another size
    return t


def other_model(engine: Engine) -> dict[str, torch.Tensor]:
    return {"transformer.down_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 32)}


def unknown_layout(engine: Engine) -> dict[str, torch.Tensor]:
    return {"lora_unet_single_blocks_0_attn_to_q.lora_down.weight": torch.zeros(4, 32)}


def pickle_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"transformer.x.lora_A.weight": torch.zeros(2, 2)}, buf)
    return buf.getvalue()


def truncated(engine: Engine, tmp: Path) -> bytes:
    save_file(good(engine, 61), str(tmp))
    data = tmp.read_bytes()
    return data[: len(data) - 100]


BAD = {
    "torch-pickle": lambda e, t: pickle_bytes(),
    "raw-pickle": lambda e, t: pickle.dumps({"a": 1}),
    "random-bytes": lambda e, t: bytes(range(256)) * 40,
    "empty": lambda e, t: b"",
    "truncated": truncated,
}
BAD_TENSORS = {
    "wrong-shapes": wrong_shapes,
    "other-model": other_model,
    "kohya-unet": unknown_layout,
}


def test_bad_files_are_refused_and_good_ones_still_serve(
    engine: Engine, library: StyleLibrary, tmp_path: Path
) -> None:
    for name, make in BAD.items():
        add_style(library.lora_dir, name, None, raw=make(engine, tmp_path / "t.safetensors"))
    for name, make_t in BAD_TENSORS.items():
        add_style(library.lora_dir, name, make_t(engine))
    add_style(library.lora_dir, "fine", good(engine, 62))
    library.rescan(engine.pipe)
    assert list(library.styles) == ["fine"]
    assert set(library.refused) == set(BAD) | set(BAD_TENSORS)
    reasons = library.refused
    assert "pickle" in reasons["torch-pickle"]
    assert "pickle" in reasons["raw-pickle"]
    assert "truncated" in reasons["truncated"]
    assert "another base model" in reasons["wrong-shapes"]
    assert "another base model" in reasons["other-model"]
    assert "match no layer" in reasons["kohya-unet"]
    assert image(engine, "fine") != image(engine, None)
    # Each refusal also has its words in the catalogue, rendered whole in both languages.
    keys = {r.name: r.reason_key for r in library.refusals.values()}
    assert keys["raw-pickle"] == "styles.refused.not_safetensors"
    assert keys["other-model"] == "styles.refused.wrong_model"
    for refusal in library.refusals.values():
        assert "{" not in refused_reason(refusal).render("zh")
        assert "{" not in refused_reason(refusal).render("en")


def test_pickle_bin_file_is_never_loaded(engine: Engine, library: StyleLibrary) -> None:
    folder = library.lora_dir / "binary"
    folder.mkdir()
    (folder / "style.toml").write_text(MANIFEST.format(n="binary"), encoding="utf-8")
    (folder / "pytorch_lora_weights.bin").write_bytes(pickle_bytes())
    library.rescan(engine.pipe)
    assert "exactly one .safetensors" in library.refused["binary"]
    with pytest.raises(LoraRefused, match=r"only \.safetensors"):
        read_header(folder / "pytorch_lora_weights.bin")


@pytest.mark.parametrize("name", ["../x", "/etc", "Upper", "a" * 33, "", "x/y", "."])
def test_style_names_that_escape_or_are_invalid_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoraRefused, match="not allowed"):
        style_dir(tmp_path, name)


def test_symlinks_out_of_the_lora_folder_are_refused(
    engine: Engine, library: StyleLibrary, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    add_style(outside, "evil", good(engine, 70))
    (library.lora_dir / "evil").symlink_to(outside / "evil")
    linked = library.lora_dir / "linked"
    linked.mkdir()
    (linked / "style.toml").write_text(MANIFEST.format(n="linked"), encoding="utf-8")
    (linked / "linked.safetensors").symlink_to(outside / "evil" / "evil.safetensors")
    library.rescan(engine.pipe)
    assert library.styles == {}
    assert "outside the LoRA folder" in library.refused["evil"]
    assert "outside the LoRA folder" in library.refused["linked"]
    assert {r.reason_key for r in library.refusals.values()} == {"styles.refused.outside"}


def test_bad_uppercase_folder_is_refused_in_scan(engine: Engine, library: StyleLibrary) -> None:
    add_style(library.lora_dir, "Shouty", good(engine, 71))
    library.rescan(engine.pipe)
    assert "not allowed" in library.refused["Shouty"]
    assert refused_reason(library.refusals["Shouty"]).render("zh").startswith("文件夹名称不允许")


async def test_file_corrupted_after_scan_fails_the_job_and_engine_keeps_serving(
    engine: Engine, library: StyleLibrary
) -> None:
    path = add_style(library.lora_dir, "flaky", good(engine, 80))
    add_style(library.lora_dir, "steady", good(engine, 81))
    library.rescan(engine.pipe)
    path.write_bytes(pickle_bytes())  # replaced on disk after the scan
    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        with pytest.raises(GenerationFailed, match="'flaky' could not be loaded"):
            await executor.generate(1, spec(style="flaky"), no_progress)
        assert [s.name for s in executor.styles()] == ["steady"]
        ok = await executor.generate(2, spec(style="steady"), no_progress)
    finally:
        await executor.aclose()
    assert ok.jpeg


async def test_executor_rescan_lists_new_style(engine: Engine, library: StyleLibrary) -> None:
    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        assert executor.styles() == []
        add_style(library.lora_dir, "late", good(engine, 90))
        scan = await executor.rescan_styles()
    finally:
        await executor.aclose()
    infos = scan.styles
    assert [(i.name, i.display_name_zh, i.strength) for i in infos] == [("late", "测试", 0.9)]
    assert scan.refused == ()


def test_check_lora_file_accepts_the_demo_turbo(engine: Engine, tiny_data_dir: Path) -> None:
    turbo = tiny_data_dir / "tiny" / "loras" / "turbo" / "tiny-turbo.safetensors"
    check_lora_file(turbo, engine.styles.linears)  # raises if it were refused
    assert any(k.startswith("diffusion_model.") for k in read_header(turbo))


# ---------------------------------------------------------------- manifests (issue 15)


def manifest_style(root: Path, engine: Engine, name: str, toml: str) -> Path:
    path = add_style(root, name, good(engine, 99))
    (path.parent / "style.toml").write_text(toml, encoding="utf-8")
    return path.parent


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('strength = "high"', "strength"),
        ("strength = 5.0", "strength"),
        ("trigger_words = 5", "trigger_words"),
        ("trigger_words = [1, 2]", "trigger_words"),
        ('nsfw = "true"', "nsfw"),
        ("nsfw = 1", "nsfw"),
        ("nfsw = true", "nfsw"),  # a typo must not silently mean "safe"
        ("name_en = 3", "name_en"),
        ('preview = ["a"]', "preview"),
    ],
)
def test_invalid_manifest_values_refuse_the_style_with_the_field_named(
    engine: Engine, library: StyleLibrary, toml: str, field: str
) -> None:
    manifest_style(library.lora_dir, engine, "bad", toml)
    add_style(library.lora_dir, "fine", good(engine, 98))
    library.rescan(engine.pipe)
    assert list(library.styles) == ["fine"]
    assert "style.toml is invalid" in library.refused["bad"]
    assert field in library.refused["bad"]


def test_nsfw_true_is_kept(engine: Engine, library: StyleLibrary) -> None:
    manifest_style(library.lora_dir, engine, "spicy", "nsfw = true\nstrength = 1\n")
    library.rescan(engine.pipe)
    assert library.styles["spicy"].info.nsfw is True
    assert library.styles["spicy"].info.strength == 1.0


def png(path: Path, size: tuple[int, int] = (8, 8)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 10, 10)).save(path, format="PNG")
    return path


def test_preview_inside_the_folder_is_used(engine: Engine, library: StyleLibrary) -> None:
    folder = manifest_style(library.lora_dir, engine, "pv", 'preview = "img/p.png"\n')
    png(folder / "img" / "p.png")
    library.rescan(engine.pipe)
    assert library.styles["pv"].info.preview_path == str((folder / "img" / "p.png").resolve())


@pytest.mark.parametrize(
    "preview",
    ["../../.env", "/etc/passwd", "..", "out.png", "notimage.png", "big.png", "style.toml", " "],
)
def test_previews_outside_the_folder_or_not_images_are_ignored(
    engine: Engine, library: StyleLibrary, tmp_path: Path, preview: str
) -> None:
    secret = tmp_path / ".env"
    secret.write_text("DISCORD_TOKEN=secret\n", encoding="utf-8")
    folder = manifest_style(library.lora_dir, engine, "pv", f'preview = "{preview}"\n')
    (folder / "out.png").symlink_to(png(tmp_path / "elsewhere.png"))
    (folder / "notimage.png").write_bytes(b"DISCORD_TOKEN=secret\n")
    (folder / "big.png").write_bytes(b"\x89PNG" + bytes(9 * 2**20))
    library.rescan(engine.pipe)
    assert "pv" in library.styles  # the style still serves, without a preview
    assert library.styles["pv"].info.preview_path is None


def raw_safetensors(header: object, data: bytes = b"") -> bytes:
    import json
    import struct

    blob = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(blob)) + blob + data


NESTED = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
BAD_HEADERS = {
    "shape-letters": {"x.lora_A.weight": {"dtype": "BF16", "shape": ["a"], "data_offsets": [0, 2]}},
    "string-offsets": {"x": {"dtype": "BF16", "shape": [1], "data_offsets": ["0", "2"]}},
    "bool-shape": {"x": {"dtype": "BF16", "shape": [True], "data_offsets": [0, 2]}},
    "negative": {"x": {"dtype": "BF16", "shape": [-1], "data_offsets": [0, 2]}},
    "unknown-dtype": {"x": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 2]}},
    "size-mismatch": {"x": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 2]}},
    "entry-not-dict": {"x": [1, 2, 3]},
    "deeply-nested": NESTED,
}


def test_malformed_headers_are_refused_per_style_and_the_rest_serve(
    engine: Engine, library: StyleLibrary
) -> None:
    for name, header in BAD_HEADERS.items():
        add_style(library.lora_dir, name, None, raw=raw_safetensors(header, b"\0\0"))
    add_style(library.lora_dir, "fine", good(engine, 97))
    library.rescan(engine.pipe)
    assert list(library.styles) == ["fine"]
    assert set(library.refused) == set(BAD_HEADERS)
    for name, why in library.refused.items():
        assert "corrupt" in why or "not a safetensors file" in why, (name, why)
    with pytest.raises(LoraRefused, match="corrupt"):
        read_header(library.lora_dir / "shape-letters" / "shape-letters.safetensors")


async def test_executor_rescan_reports_each_refused_folder_with_a_catalogue_reason(
    engine: Engine, library: StyleLibrary
) -> None:
    """``/styles rescan`` can say which folders were refused and why, in the user's language."""
    add_style(library.lora_dir, "pickled", None, raw=pickle_bytes())
    add_style(library.lora_dir, "fine", good(engine, 91))
    executor = LocalExecutor(engine, jpeg_quality=95)
    try:
        scan = await executor.rescan_styles()
    finally:
        await executor.aclose()
    assert [s.name for s in scan.styles] == ["fine"]
    (refused,) = scan.refused
    assert (refused.name, refused.reason_key) == ("pickled", "styles.refused.not_safetensors")
    reason = refused_reason(refused)
    assert "pickled.safetensors" in reason.render("en")
    assert "safetensors" in reason.render("zh")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reason.render("zh"))
