"""Job states as users read them in /history, /show, Info and refusals: words from the catalogue
in the chat's language, never the enum's English value (issue 16)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.discord import format as discord_format
from adapters.telegram import texts as telegram_texts
from bot import access, texts
from bot.domain import GenerationSpec, Job, JobState, Language, Platform, Requester
from bot.i18n import t

JOB = Job(
    id=7,
    requester=Requester(Platform.TELEGRAM, "42", "Ada", "42"),
    spec=GenerationSpec("a fox", None, seed=1, steps=4, width=1024, height=1024),
    state=JobState.QUEUED,
    created_at=0.0,
)


def word(state: JobState, lang: str) -> str:
    return t(f"state.{state.value}", lang)


@pytest.mark.parametrize("state", list(JobState))
def test_every_state_has_its_own_word_in_both_languages(state: JobState) -> None:
    assert word(state, "en") == state.value
    assert word(state, "zh") != state.value
    others = {word(s, "zh") for s in JobState if s is not state}
    assert word(state, "zh") not in others


@pytest.mark.parametrize("state", list(JobState))
def test_chinese_history_and_info_name_the_state_in_chinese(state: JobState) -> None:
    job = replace(JOB, state=state)
    shown = [
        discord_format.info_text(job, Language.ZH),
        discord_format.history_text([job], 1, Language.ZH),
        telegram_texts.job_line(job, Language.ZH),
    ]
    for text in shown:
        assert word(state, "zh") in text
        assert state.value not in text


def test_english_lists_keep_the_english_word() -> None:
    job = replace(JOB, state=JobState.CANCELLED)
    assert "cancelled" in telegram_texts.job_line(job, Language.EN)
    assert "(cancelled)" in discord_format.info_text(job, Language.EN)


def test_a_refused_cancel_names_the_state_in_the_chat_language() -> None:
    refusal = texts.cannot_cancel(7, JobState.RUNNING)
    assert word(JobState.RUNNING, "zh") in refusal.render("zh")
    assert "running" not in refusal.render("zh")
    assert "is running" in refusal.render("en")


def test_a_hidden_prompt_is_said_in_the_chat_language() -> None:
    """A job made from an image whose author hides the details shows a placeholder, never the
    prompt; in Chinese chats the placeholder is Chinese too."""
    job = access.hidden(replace(JOB, state=JobState.POSTED))
    zh = t("core.prompt_hidden", "zh")
    shown = [
        discord_format.caption(job, None, lang=Language.ZH),
        discord_format.info_text(job, Language.ZH),
        discord_format.history_text([job], 1, Language.ZH),
        discord_format.queue_text([(job, 1)], Language.ZH),
        telegram_texts.caption(job, None, lang=Language.ZH),
        telegram_texts.job_line(job, Language.ZH),
    ]
    for text in shown:
        assert zh in text, text
        assert access.HIDDEN_PROMPT not in text
        assert "a fox" not in text
    assert access.HIDDEN_PROMPT in telegram_texts.caption(job, None, lang=Language.EN)
