"""Pictures in and out of Telegram: which of a user's messages carries an image to start from,
fetching it no larger than the core accepts, and whether a result may go as a photo.

Telegram refuses a photo over 10 MB, with width + height over 10,000 or a side over 20 times
the other (https://core.telegram.org/bots/api#sendphoto); such a result (a large upscale) goes
as a document, which keeps the file as it is.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError
from telegram import Bot, Document, Message, PhotoSize

from bot.errors import BadRequest
from bot.i18n import msg
from bot.images import check_size

PHOTO_LIMIT_BYTES = 10 * 1024 * 1024
PHOTO_SIDES_LIMIT = 10_000  # width + height
PHOTO_RATIO_LIMIT = 20


def fits_as_photo(jpeg: bytes) -> bool:
    """True when Telegram takes ``jpeg`` as a photo (size in bytes and pixels, aspect ratio);
    only the header is read."""
    if len(jpeg) > PHOTO_LIMIT_BYTES:
        return False
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        return False  # not ours to judge: a document takes any file
    long, short = max(width, height), max(1, min(width, height))
    return width + height <= PHOTO_SIDES_LIMIT and long / short <= PHOTO_RATIO_LIMIT


def image_of(message: Message | None) -> PhotoSize | Document | None:
    """The picture a message carries: its largest photo size, or a document sent as a file
    whose type says it is an image. None for anything else."""
    if message is None:
        return None
    if message.photo:
        return message.photo[-1]
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return document
    return None


def is_file(message: Message | None) -> bool:
    """A document that is not an image (a PDF sent with /imagine): worth a clear refusal."""
    return message is not None and message.document is not None and image_of(message) is None


async def fetch(bot: Bot, picture: PhotoSize | Document) -> bytes:
    """The picture's bytes; refused (the core's rule and message) before any download when
    Telegram says it is larger than the core accepts. The core checks the bytes themselves."""
    if picture.file_size is not None:
        check_size(picture.file_size)
    file = await bot.get_file(picture.file_id)
    if file.file_size is not None:
        check_size(file.file_size)
    if not file.file_path:
        raise BadRequest(msg("core.image_empty"))
    return bytes(await file.download_as_bytearray())
