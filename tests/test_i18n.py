"""The one text catalogue: both languages complete, and no user-facing English outside it.

The scan reads the source (no import), so it also covers code paths no other test reaches: a
string literal that a user could read — an argument of a send/reply/edit/answer call, a button
label, a message of a core error, a button handler's answer, or any literal with two English
words in an adapter — fails here unless it is a catalogue key or on the short allowlist below
(log messages, operator errors at start-up and protocol ids are not for chat users).
"""

from __future__ import annotations

import ast
import inspect
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot import errors
from bot.domain import Language
from bot.i18n import Message, catalogue, language_of, po_path, t

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("adapters", "bot")

# Calls whose text arguments a chat user reads.
SINKS = frozenset({
    "reply_text", "send_message", "edit_message_text", "edit_text", "answer", "send",
    "send_photo", "send_document", "edit_message_caption", "_say", "_tell", "followup",
    "InlineKeyboardButton", "Button", "SelectOption", "BotCommand", "Choice",
})  # fmt: skip
SINK_KEYWORDS = frozenset({"content", "text", "caption", "label", "placeholder", "description"})
USER_ERRORS = frozenset(
    name
    for name, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.TurbobotError)
)
LOG_OBJECTS = frozenset({"log", "_log", "logger", "_logger", "logging", "warnings"})
TWO_WORDS = re.compile(r"[A-Za-z]{2,}[,;:!?.']?\s+[A-Za-z]{2,}")
LETTERS = re.compile(r"[A-Za-z]{2,}")
KEY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?")  # a catalogue key (or a key prefix)

# (file, start of the literal): not for chat users, and why.
ALLOWED: dict[tuple[str, str], str] = {
    ("adapters/discord/handlers.py", "style list"): "guard name, used in log lines",
    ("adapters/discord/handlers.py", "style set"): "guard name, used in log lines",
    ("adapters/discord/community.py", "settings show"): "guard name, used in log lines",
    ("adapters/discord/community.py", "settings set"): "guard name, used in log lines",
    ("adapters/discord/community.py", "gallery page"): "guard name, used in log lines",
    ("adapters/discord/community.py", "forget confirm"): "guard name, used in log lines",
    ("adapters/discord/commands.py", "English"): "a language's own name, shown as is",
}


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text[:80]!r}"


def _strings(node: ast.AST) -> Iterator[ast.Constant]:
    """String constants inside ``node`` (f-string parts included)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


class _Scan(ast.NodeVisitor):
    def __init__(self, path: str, *, adapter: bool) -> None:
        self.path = path
        self.adapter = adapter
        self.ignored: set[int] = set()
        self.suspects: dict[int, ast.Constant] = {}

    def _ignore(self, node: ast.AST) -> None:
        self.ignored.update(id(s) for s in _strings(node))

    def _suspect(self, node: ast.AST) -> None:
        for s in _strings(node):
            if LETTERS.search(s.value) and not KEY.fullmatch(s.value):
                self.suspects[id(s)] = s

    def visit_Module(self, node: ast.Module) -> None:
        self._docstring(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._docstring(node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._docstring(node)
        if self.adapter:
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    self._suspect_answer(ret.value)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _suspect_answer(self, value: ast.expr) -> None:
        """A handler returning a literal word or sentence (a button's answer); an f-string
        only when it has words (not a URL or a repr)."""
        if isinstance(value, ast.Constant):
            self._suspect(value)
        elif isinstance(value, ast.JoinedStr):
            for s in _strings(value):
                if TWO_WORDS.search(s.value):
                    self.suspects[id(s)] = s

    def _docstring(self, node: ast.Module | ast.ClassDef | ast.FunctionDef) -> None:
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            self.ignored.add(id(first.value))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        owner = func.value if isinstance(func, ast.Attribute) else None
        if isinstance(owner, ast.Name) and owner.id in LOG_OBJECTS:
            self._ignore(node)
        elif _name(func) in SINKS:
            for arg in node.args:
                self._suspect(arg)
            for kw in node.keywords:
                if kw.arg in SINK_KEYWORDS:
                    self._suspect(kw.value)
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc
        name = _name(exc.func) if isinstance(exc, ast.Call) else None
        if name in USER_ERRORS and isinstance(exc, ast.Call):
            for arg in exc.args:
                self._suspect(arg)
        else:
            self._ignore(node)  # internal and operator errors are for logs, in English
        self.generic_visit(node)

    def findings(self, tree: ast.Module) -> list[Finding]:
        self.visit(tree)
        if self.adapter:
            for s in _strings(tree):
                if TWO_WORDS.search(s.value):
                    self.suspects.setdefault(id(s), s)
        return [
            Finding(self.path, s.lineno, s.value)
            for key, s in self.suspects.items()
            if key not in self.ignored and not _allowed(self.path, s.value)
        ]


def _allowed(path: str, text: str) -> bool:
    return any(path == p and text.startswith(start) for p, start in ALLOWED)


def scan(source: str, path: str) -> list[Finding]:
    return _Scan(path, adapter=path.startswith("adapters/")).findings(ast.parse(source))


def _sources() -> Iterator[tuple[str, str]]:
    for top in SCANNED:
        files = [ROOT / top] if top.endswith(".py") else sorted((ROOT / top).rglob("*.py"))
        for file in files:
            yield file.relative_to(ROOT).as_posix(), file.read_text(encoding="utf-8")


# ----- the scan -----
def test_no_user_facing_english_outside_the_catalogue() -> None:
    found = [f for path, source in _sources() for f in scan(source, path)]
    assert not found, "texts to move into bot/locale:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize(
    "snippet",
    [
        'await message.reply_text("You have no waiting jobs.")',
        'await query.answer(f"Cancelled #{job_id}.")',
        'InlineKeyboardButton("Reroll", callback_data=data)',
        'discord.ui.Button(label="Delete everything")',
        'raise NotFound(f"There is no job #{job_id}.")',
        'async def on_delete(self):\n    return "Deleted."',
        'TEXT = "Something went wrong on our side"',
    ],
)
def test_the_scan_catches_english_in_an_adapter(snippet: str) -> None:
    assert scan(snippet, "adapters/telegram/example.py")


@pytest.mark.parametrize(
    "snippet",
    [
        'await message.reply_text(t("telegram.queued", lang, job=1))',
        'log.info("telegram: job %s took too long", job_id)',
        'raise ValueError("not a number from 0 to 9")',
        'def f():\n    """Docstrings explain the code to its readers."""',
        'InlineKeyboardButton(f"👍 {score}", callback_data=data)',
    ],
)
def test_the_scan_lets_keys_logs_and_internal_errors_pass(snippet: str) -> None:
    assert scan(snippet, "adapters/telegram/example.py") == []


# ----- the catalogue -----
def _po(lang: Language) -> dict[str, str]:
    with po_path(lang).open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_key_has_both_languages_with_the_same_fields() -> None:
    en, zh = _po(Language.EN), _po(Language.ZH)
    assert len(en) > 200
    assert set(en) == set(zh)
    for key in en:
        assert en[key].strip(), f"{key}: English is empty"
        assert zh[key].strip(), f"{key}: Chinese is empty"
        assert _fields(en[key]) == _fields(zh[key]), key


def test_chinese_is_chinese() -> None:
    """A copied English text is not a translation (short labels like "cfg" aside)."""
    han = re.compile(r"[\u4e00-\u9fff]")
    zh = _po(Language.ZH)
    untranslated = [k for k, v in zh.items() if not han.search(v) and LETTERS.search(v)]
    assert untranslated == []


def test_every_key_used_in_the_code_exists() -> None:
    used = set()
    for _, source in _sources():
        used |= set(re.findall(r'\b(?:t|msg)\(\s*"([a-z]+\.[a-z0-9_.]+)"', source))
    assert len(used) > 50
    assert used - set(catalogue(Language.EN)) == set()


def test_t_fills_in_and_falls_back() -> None:
    assert t("telegram.cancelled", "zh-hans", job=7) == "已取消 #7。"
    assert t("telegram.cancelled", Language.EN, job=7) == "Cancelled #7."
    assert t("telegram.cancelled", "fr", job=7) == "Cancelled #7."
    assert Message("telegram.cancelled", {"job": 7}).render("zh") == "已取消 #7。"
    assert str(Message("telegram.cancelled", {"job": 7})) == "Cancelled #7."
    with pytest.raises(KeyError):
        t("telegram.no_such_text")


@pytest.mark.parametrize(
    ("code", "lang"),
    [("zh-CN", Language.ZH), ("zh-hans", Language.ZH), ("ZH", Language.ZH), ("en-US", "en")],
)
def test_language_of(code: str, lang: str) -> None:
    assert language_of(code) == lang
    assert language_of(None) is Language.EN
