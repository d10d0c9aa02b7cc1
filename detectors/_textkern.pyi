# The C kernel's signatures (detectors/_textkern.c); see
# detectors.text.prompt_features (features is it after detectors.text.normalize).
from collections.abc import Callable

def configure(
    ranges: list[tuple[int, int]],
    idioms: list[str],
    entries: list[tuple[str, int]],
    markers: list[tuple[str, int]],
    stop: list[bytes],
    strip_char: Callable[[str], str | None],
    strip_word: Callable[[str], str],
    norm_char: Callable[[str], str | None],
    norm_text: Callable[[str], str],
    /,
) -> None: ...
def features(
    text: str, /
) -> tuple[tuple[int, int, int, int], int, bool, list[int], int]: ...
def features_raw(
    text: str, /
) -> tuple[tuple[int, int, int, int], int, bool, list[int], int]: ...
def crc32(data: bytes, /) -> int: ...
