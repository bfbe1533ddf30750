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
    "Server settings (admins)": "服务器设置（管理员）",
    "Show this server's settings": "显示本服务器的设置",
    "Change this server's settings": "修改本服务器的设置",
    "Default style for this server": "本服务器的默认风格",
    "Allowed styles, comma-separated (all = every style)": "允许的风格，用逗号分隔（all = 全部）",
    "Images per minute per user": "每位用户每分钟的图片数",
    "Images a user may ask for at once": "每位用户可一次连续请求的图片数",
    "Waiting jobs per user": "每位用户排队中的任务数",
    "Channel where shared images are posted": "分享图片发布的频道",
    "Banned words, comma-separated (none = no words)": "禁用词，用逗号分隔（none = 无）",
    "May results be shared outside this server": "是否允许把结果分享到服务器之外",
    "Language of the bot's replies": "机器人回复的语言",
    "Settings to reset, comma-separated": "要重置的设置，用逗号分隔",
    "The server's shared images": "本服务器分享的图片",
    "Order": "排序",
    "Time span": "时间范围",
    "Your privacy settings": "你的隐私设置",
    "Never show my images in the showcase or gallery": "永不在展示频道或画廊中显示我的图片",
    "Hide my prompt, style and seed when shared": "分享时隐藏我的提示词、风格和种子",
    "Delete everything the bot keeps about you": "删除机器人保存的关于你的一切",
    "Block a user from the bot in this server (admins)": "在本服务器禁止某用户使用机器人（管理员）",
    "Unblock a user (admins)": "解除禁止（管理员）",
    "The user": "用户",
    "Moderation log of this server (admins)": "本服务器的管理日志（管理员）",
    # replies
    "queued": "已排队：第 {position} 位，约 {eta} 秒。",
    "running": "生成中：第 {step}/{total} 步。",
    "done": "完成！{link}",
    "failed": "失败：{reason}",
    "went_wrong": "出了点问题，已记录。请稍后再试。",
    "stopping": "机器人正在重启，请一分钟后再试。",
    "default_set": "你的默认风格现在是 {style}。",
    "default_cleared": "已清除你的默认风格。",
    "previews_shown": "-# 附有 {total} 个风格预览图中的 {shown} 个（每条消息最多 10 个附件）。",
    "no_jobs": "你没有排队中的任务。",
    "no_history": "这一页没有图片。",
    "cancelled": "已取消任务 #{job}。",
    "deleted": "已删除任务 #{job}。",
    "too_big": "{mention} 图片 #{job} 有 {size} MiB，超过了 {limit} MiB 的上传限制。",
    # community
    "admins_only": "只有服务器管理员可以这样做。",
    "settings_saved": "设置已保存。",
    "settings_title": "**服务器设置**",
    "shared": "已分享到展示频道：{link}",
    "no_showcase": "本服务器没有展示频道（管理员可用 /settings 设置）。图片链接：{link}",
    "gallery_empty": "这里还没有分享的图片。",
    "gallery_title": "**画廊 · {sort} · {period}**（第 {page} 页）",
    "privacy": "在展示频道和画廊中显示我的图片：{share}。分享时显示细节：{details}。",
    "yes": "是",
    "no": "否",
    "forget_confirm": "这会删除机器人为你保存的所有图片、记录和设置，且无法恢复。确定吗？",
    "forgotten": "已删除：{count} 个任务，以及关于你的其他一切。",
    "not_yours": "这个按钮不是给你的。",
    "blocked": "已禁止 {user} 在本服务器使用机器人。",
    "unblocked": "已解除对 {user} 的禁止。",
    "audit_title": "**管理日志**",
    "audit_empty": "管理日志为空。",
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
    "previews_shown": (
        "-# Previews attached for {shown} of the {total} styles that have one"
        " (a message holds at most 10 files)."
    ),
    "no_jobs": "You have no jobs in the queue.",
    "no_history": "No images on this page.",
    "cancelled": "Cancelled job #{job}.",
    "deleted": "Deleted job #{job}.",
    "too_big": "{mention} image #{job} is {size} MiB, over the {limit} MiB upload limit.",
    # community
    "admins_only": "Only server admins can do this.",
    "settings_saved": "Settings saved.",
    "settings_title": "**Server settings**",
    "shared": "Shared to the showcase: {link}",
    "no_showcase": (
        "This server has no showcase channel (an admin can set one with /settings). "
        "The image's link: {link}"
    ),
    "gallery_empty": "No shared images here yet.",
    "gallery_title": "**Gallery · {sort} · {period}** (page {page})",
    "privacy": "Show my images in the showcase and gallery: {share}. Show details: {details}.",
    "yes": "yes",
    "no": "no",
    "forget_confirm": (
        "This deletes every image, record and setting the bot keeps about you, for good. Sure?"
    ),
    "forgotten": "Deleted: {count} jobs and everything else about you.",
    "not_yours": "This button is not for you.",
    "blocked": "{user} is blocked from the bot in this server.",
    "unblocked": "{user} may use the bot in this server again.",
    "audit_title": "**Audit log**",
    "audit_empty": "The audit log is empty.",
}

HELP_EN = (
    "**/imagine** `prompt` — make an image (style, aspect, seed and steps are optional).\n"
    "**/style list** — installed styles; **/style set** — your default style.\n"
    "**/history** — your images; **/queue** — your waiting jobs (cancel them there);\n"
    "**/show** `job` — post an earlier image again.\n"
    "**/gallery** — the server's shared images; **/privacy**, **/forget** — your data.\n"
    "Buttons under an image: Reroll (new seed), Variations (nearby seed), Restyle, Share "
    "(to the showcase), Remix, Delete, Info. ⭐ on a showcase post is a vote."
)
HELP_ZH = (
    "**/imagine** `prompt` — 生成图片（风格、比例、种子、步数可选）。\n"
    "**/style list** — 已安装的风格；**/style set** — 你的默认风格。\n"
    "**/history** — 你的图片；**/queue** — 你排队中的任务（可取消）；\n"
    "**/show** `job` — 再次发布之前的图片。\n"
    "**/gallery** — 本服务器分享的图片；**/privacy**、**/forget** — 你的数据。\n"
    "图片下的按钮：重新生成、变体、换风格、分享（到展示频道）、混搭、删除、信息。"
    "在展示帖子上点 ⭐ 即为投票。"
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
