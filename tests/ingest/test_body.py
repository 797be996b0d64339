"""Bounded gzip decompression."""

from __future__ import annotations

import gzip

import pytest

from core.errors import MalformedBody, PayloadTooLarge
from ingest.body import gunzip_bounded


def test_output_up_to_the_limit_is_returned() -> None:
    payload = b"x" * 1000
    assert gunzip_bounded(gzip.compress(payload), limit=1000) == payload


def test_one_byte_over_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        gunzip_bounded(gzip.compress(b"x" * 1001), limit=1000)


def test_a_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * (256 << 20))  # 256 MiB of zeros in about 256 KiB
    with pytest.raises(PayloadTooLarge):
        gunzip_bounded(bomb, limit=1 << 20)


@pytest.mark.parametrize(
    "data",
    [b"not gzip at all", gzip.compress(b"{}")[:-4], gzip.compress(b"{}") + b"trailing"],
)
def test_corrupt_truncated_or_trailing_data_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedBody):
        gunzip_bounded(data, limit=1 << 20)
