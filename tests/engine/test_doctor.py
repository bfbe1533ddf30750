"""``turbobot doctor``: good and broken configurations, text and JSON, before any weight loads."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from bot.config import Settings
from bot.entry import doctor
from bot.entry.cli import main as cli_main
from engine import plan as memplan
from engine import synthetic
from tests.telegram.fake_botapi import FakeBotApi

# Rank-64 Turbo and rank-32 styles over the 840 block linears, counted by hand: per block 8
# attention 3072x3072, 4 MLP 3072<->12288 and 2 modulation 3072->18432 Linears.
PER_BLOCK_IN_OUT = 8 * (3072 + 3072) + 4 * (3072 + 12288) + 2 * (3072 + 18432)
TURBO_BYTES = 2 * 64 * PER_BLOCK_IN_OUT * 60
STYLE_BYTES = 2 * 32 * PER_BLOCK_IN_OUT * 60


@pytest.fixture(autouse=True)
def _fresh_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing configured: no platform or turbobot variable, an empty working directory."""
    for name in list(os.environ):
        if name.startswith(("TURBOBOT_", "DISCORD_", "TELEGRAM_", "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli_main(["doctor", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_fresh_checkout_says_what_it_would_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_json(capsys)
    assert code == 0
    assert out["ok"] is True
    assert out["problems"] == []
    assert {"profile", "vram_gib", "host_ram_gib"} <= set(out["plan"])
    if not torch.cuda.is_available():
        assert out["plan"]["profile"] == "cpu"
    # tiny: its demo Turbo and three styles, each matched onto the tiny transformer
    names = [lora["name"] for lora in out["loras"]]
    assert names[0] == "turbo"
    assert len(names) == 4
    for lora in out["loras"]:
        assert set(lora) >= {"name", "ok", "rank", "modules_matched", "modules_missing"}
        assert lora["ok"] is True
        assert (lora["modules_missing"], lora["rank"]) == (0, 4)


def test_cpu_only_box_lists_what_each_card_would_run() -> None:
    if torch.cuda.is_available():
        pytest.skip("this box has a GPU: the per-card table is for CPU-only boxes")
    report = doctor.diagnose(settings=settings(), verify=False)
    cards = {c["card"]: c for c in report.cards}
    assert cards["H100 80 GB"]["profile"] == "full"
    assert cards["RTX 4090 24 GB"]["profile"] == "low"
    assert cards["H100 80 GB"]["seconds"] < cards["RTX 4090 24 GB"]["seconds"]
    text = doctor.to_text(report)
    assert "What each card would run" in text
    assert text.endswith("OK: the bot can run.")


def test_synthetic_needs_no_files_and_plans_with_its_real_lora_sizes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run_json(capsys, "--gpu-gib", "80")
    assert code == 0
    os.environ["TURBOBOT_MODEL"] = "synthetic"
    try:
        code, out = run_json(capsys, "--gpu-gib", "80")
    finally:
        del os.environ["TURBOBOT_MODEL"]
    assert code == 0, out["problems"]
    assert not (tmp_path / "data" / "synthetic").exists()  # headers from shapes: nothing written
    loras = {lora["name"]: lora for lora in out["loras"]}
    assert loras["turbo"] == {**loras["turbo"], "ok": True, "rank": 64, "modules_matched": 840}
    assert loras["synthetic-a"]["rank"] == 32
    # The plan doctor prints is the engine's plan for these LoRA bytes (counted by hand above).
    expected = memplan.plan_for(
        80, TURBO_BYTES + STYLE_BYTES, resident_styles_bytes=2 * STYLE_BYTES
    )
    assert out["plan"]["profile"] == "full" == expected.chosen
    assert out["plan"]["vram_gib"] == round(expected.row("full").vram_gib, 2)
    assert out["plan"]["host_ram_gib"] == round(expected.row("full").host_steady_gib, 2)


def test_auto_on_a_24_gib_card_picks_low(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["TURBOBOT_MODEL"] = "synthetic"
    try:
        _code, out = run_json(capsys, "--gpu-gib", "24")
    finally:
        del os.environ["TURBOBOT_MODEL"]
    assert out["plan"]["profile"] == "low"
    fits = {p["profile"]: p["fits"] for p in out["plan"]["profiles"]}
    assert fits == {"full": False, "balanced": False, "low": True}


def test_a_forced_profile_that_does_not_fit_is_one_problem() -> None:
    report = doctor.diagnose(
        settings=settings(TURBOBOT_MODEL="synthetic", TURBOBOT_MEMORY_PROFILE="full"),
        gpu_gib=24,
        verify=False,
    )
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith("TURBOBOT_MEMORY_PROFILE=full needs")


def _style(lora_dir: Path, name: str, tensors: dict[str, torch.Tensor]) -> None:
    folder = lora_dir / name
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / f"{name}.safetensors"))
    (folder / "style.toml").write_text(f'name_en = "{name}"\n', encoding="utf-8")


def _fake_model(root: Path, *, with_config: bool = True) -> Path:
    """A diffusers folder as far as doctor looks: model_index.json and the transformer config."""
    model = root / "model"
    (model / "transformer").mkdir(parents=True)
    (model / "model_index.json").write_text("{}", encoding="utf-8")
    if with_config:
        config = json.dumps(memplan.read_config("transformer"))
        (model / "transformer" / "config.json").write_text(config, encoding="utf-8")
    return model


def _doctor_json(gpu_gib: float = 80, host_gib: float = 256, **env: str) -> dict[str, Any]:
    """Doctor on ``env`` for a card and a host of these sizes (whatever this machine has)."""
    found = doctor.diagnose(settings=settings(**env), gpu_gib=gpu_gib, host_gib=host_gib)
    out: dict[str, Any] = json.loads(doctor.to_json(found))
    assert out["ok"] is found.ok
    return out


def test_refused_styles_are_reported_and_the_bot_still_runs(tmp_path: Path) -> None:
    lora_dir = tmp_path / "loras"
    turbo = synthetic.synthetic_lora(
        {"transformer_blocks.0.attn.to_q": (3072, 3072)}, seed=1, layout="diffusers", rank=4
    )
    (lora_dir / "turbo").mkdir(parents=True)
    save_file(turbo, str(lora_dir / "turbo" / "turbo.safetensors"))
    # a LoRA for another model: its input width does not fit Qwen-Image's 3072
    other = {
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 4096),
        "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(3072, 4),
    }
    _style(lora_dir, "sdxl-thing", other)
    pickle = lora_dir / "pickled"
    pickle.mkdir()
    (pickle / "pickled.safetensors").write_bytes(b"\x80\x04\x95 not a safetensors file at all")
    (pickle / "style.toml").write_text('name_en = "p"\n', encoding="utf-8")
    env = {"TURBOBOT_MODEL": str(_fake_model(tmp_path)), "TURBOBOT_LORA_DIR": str(lora_dir)}
    out = _doctor_json(**env)
    assert (out["ok"], out["problems"]) == (True, [])
    loras = {lora["name"]: lora for lora in out["loras"]}
    assert loras["turbo"]["ok"] is True
    assert loras["turbo"]["modules_matched"] == 1
    assert loras["sdxl-thing"]["ok"] is False
    assert loras["sdxl-thing"]["modules_missing"] == 1  # the lora_A that does not fit
    assert loras["sdxl-thing"]["modules_unpaired"] == 1  # so to_q is left with lora_B only
    assert loras["pickled"]["ok"] is False
    refused = [n for n in out["notes"] if n.startswith("Style ")]
    assert len(refused) == 2
    assert any("pickled" in n and "not a safetensors file" in n for n in refused)


def test_a_turbo_lora_for_another_model_is_a_problem(tmp_path: Path) -> None:
    lora_dir = tmp_path / "loras"
    (lora_dir / "turbo").mkdir(parents=True)
    wrong = {
        "diffusion_model.transformer_blocks.0.attn.to_q.lora_down.weight": torch.zeros(8, 2048),
        "diffusion_model.transformer_blocks.0.attn.to_q.lora_up.weight": torch.zeros(3072, 8),
        "diffusion_model.transformer_blocks.0.attn.to_q.alpha": torch.tensor(8.0),
    }
    save_file(wrong, str(lora_dir / "turbo" / "flux-turbo.safetensors"))
    env = {"TURBOBOT_MODEL": str(_fake_model(tmp_path)), "TURBOBOT_LORA_DIR": str(lora_dir)}
    out = _doctor_json(**env)
    assert out["ok"] is False
    assert len(out["problems"]) == 1
    assert out["problems"][0].startswith("Turbo LoRA flux-turbo.safetensors: ")
    assert out["loras"][0]["name"] == "turbo"
    assert out["loras"][0]["ok"] is False


def test_a_model_folder_without_the_transformer_config_is_one_line(tmp_path: Path) -> None:
    env = {"TURBOBOT_MODEL": str(_fake_model(tmp_path, with_config=False))}
    out = _doctor_json(**env, TURBOBOT_TURBO_LORA="none")
    assert out["ok"] is False
    assert len(out["problems"]) == 1
    assert "not found locally" in out["problems"][0]
    assert out["plan"]["profile"] == "full"  # still planned, on the shipped real configs


def test_bad_settings_and_missing_model_are_lines_not_tracebacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "TURBOBOT_JPEG_QUALITY=300\nTURBOBOT_MODEL=/nowhere/Qwen-Image-2512\n", encoding="utf-8"
    )
    code = cli_main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM: ")]
    assert any("TURBOBOT_JPEG_QUALITY=300" in p for p in problems)
    assert any("TURBOBOT_MODEL" in p for p in problems)
    assert any("TURBOBOT_TURBO_LORA" in p for p in problems)
    assert "Traceback" not in out
    # the plan still comes from the real configs shipped with the engine
    assert "memory plan" in out


def test_too_little_host_ram_for_the_chosen_profile_is_a_problem() -> None:
    out = _doctor_json(gpu_gib=24, host_gib=32, TURBOBOT_MODEL="synthetic")
    low = next(p for p in out["plan"]["profiles"] if p["profile"] == "low")
    assert out["plan"]["profile"] == "low"
    assert out["problems"] == [
        f"Profile low needs {low['host_ram_peak_gib']:.0f} GiB of host RAM while loading, "
        "this machine has 32 GiB: add RAM or swap."
    ]
    assert _doctor_json(gpu_gib=24, host_gib=128, TURBOBOT_MODEL="synthetic")["ok"] is True


async def test_a_rejected_token_is_a_problem_an_unreachable_platform_a_note() -> None:
    good, wrong = (
        "7000001:AAtesttokentesttokentesttokentest",
        "7000001:AAwrongwrongwrongwrongwrongwrong",
    )
    async with FakeBotApi(valid_token=good) as telegram:
        configured = settings(
            TURBOBOT_MODEL="synthetic",
            TELEGRAM_TOKEN=wrong,
            TELEGRAM_API_BASE_URL=telegram.base_url,
            DISCORD_TOKEN="discord-token-never-shown",
            DISCORD_API_BASE_URL="http://127.0.0.1:9/api/v10",  # nothing listens there
        )
        # doctor runs its own event loop, as the CLI does; the fake serves from this one
        found = await asyncio.to_thread(
            doctor.diagnose, settings=configured, gpu_gib=80, host_gib=256
        )
    assert len(found.problems) == 1
    assert found.problems[0].startswith("TELEGRAM_TOKEN: Telegram rejected the token")
    assert any(n.startswith("DISCORD_TOKEN: could not reach") for n in found.notes)
    text = doctor.to_json(found) + doctor.to_text(found)
    assert wrong not in text
    assert "discord-token-never-shown" not in text
