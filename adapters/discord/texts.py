"""What users read: command localisations (English, Chinese) and the adapter's own messages.

Command names, descriptions and choice names are ``locale_str`` in English; Discord shows the
Chinese text from :class:`Translator` to zh-CN clients. Replies pick a language from the
interaction's locale. Error messages from the core (``bot.errors``) are shown as they are.
"""

# Chinese text uses full-width punctuation on purpose; RUF001 would flag every such character.
# ruff: noqa: RUF001

from __future__ import annotations

from discord import Locale, app_commands

# English source text -> Simplified Chinese. Keys are the exact ``locale_str`` messages.
ZH_CN: dict[str, str] = {
    # commands and options
    "Make an image from a prompt": "根据提示词生成图片",
    "What to draw": "要画什么",
    "A style (type to search)": "风格（输入以搜索）",
    "Picture shape": "画面比例",
    "Random seed (same seed, same image)": "随机种子（种子相同，图片相同）",
    "Denoising steps (more is slower)": "去噪步数（越多越慢）",
    "Styles": "风格",
    "List the installed styles": "列出已安装的风格",
    "Set your default style (leave empty to clear)": "设置你的默认风格（留空则清除）",
    "Your recent images": "你最近的图片",
    "Page number": "页码",
    "Your jobs in the queue": "你排队中的任务",
    "Post an earlier image again": "再次发布之前的图片",
    "Job number": "任务编号",
    "How to use the bot": "使用说明",
    # replies
    "queued": "已排队：第 {position} 位，约 {eta} 秒。",
    "running": "生成中：第 {step}/{total} 步。",
    "done": "完成！{link}",
    "failed": "失败：{reason}",
    "went_wrong": "出了点问题，已记录。请稍后再试。",
    "stopping": "机器人正在重启，请一分钟后再试。",
    "default_set": "你的默认风格现在是 {style}。",
    "default_cleared": "已清除你的默认风格。",
    "no_jobs": "你没有排队中的任务。",
    "no_history": "这一页没有图片。",
    "cancelled": "已取消任务 #{job}。",
    "deleted": "已删除任务 #{job}。",
    "too_big": "{mention} 图片 #{job} 有 {size} MiB，超过了 {limit} MiB 的上传限制。",
}

EN: dict[str, str] = {
    "queued": "Queued: position {position}, about {eta} s.",
    "running": "Working: step {step}/{total}.",
    "done": "Done! {link}",
    "failed": "Failed: {reason}",
    "went_wrong": "Something went wrong on our side; it has been logged. Please try again later.",
    "stopping": "The bot is restarting; please try again in a minute.",
    "default_set": "Your default style is now {style}.",
    "default_cleared": "Your default style is cleared.",
    "no_jobs": "You have no jobs in the queue.",
    "no_history": "No images on this page.",
    "cancelled": "Cancelled job #{job}.",
    "deleted": "Deleted job #{job}.",
    "too_big": "{mention} image #{job} is {size} MiB, over the {limit} MiB upload limit.",
}

HELP_EN = (
    "**/imagine** `prompt` — make an image (style, aspect, seed and steps are optional).\n"
    "**/style list** — installed styles; **/style set** — your default style.\n"
    "**/history** — your images; **/queue** — your waiting jobs (cancel them there);\n"
    "**/show** `job` — post an earlier image again.\n"
    "Buttons under an image: Reroll (new seed), Variations (nearby seed), Restyle, Share, "
    "Delete, Info."
)
HELP_ZH = (
    "**/imagine** `prompt` — 生成图片（风格、比例、种子、步数可选）。\n"
    "**/style list** — 已安装的风格；**/style set** — 你的默认风格。\n"
    "**/history** — 你的图片；**/queue** — 你排队中的任务（可取消）；\n"
    "**/show** `job` — 再次发布之前的图片。\n"
    "图片下的按钮：重新生成、变体、换风格、分享、删除、信息。"
)


def is_chinese(locale: Locale | str) -> bool:
    return str(locale).startswith("zh")


def say(locale: Locale | str, key: str, **values: object) -> str:
    """A reply in the user's language (Chinese for zh-*, English otherwise)."""
    table = ZH_CN if is_chinese(locale) else EN
    return table[key].format(**values)


def help_text(locale: Locale | str) -> str:
    return HELP_ZH if is_chinese(locale) else HELP_EN


class Translator(app_commands.Translator):
    """Gives Discord the Chinese names of commands, options and choices at sync time."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if locale is not Locale.chinese:
            return None
        return ZH_CN.get(string.message)
