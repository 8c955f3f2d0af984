"""The sequence image: the exact bytes of the stored-sequence interface, and decode(compile(x))
is x for any sequence the text format can hold."""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from hypothesis import given, settings
from test_sequence import _without_lines, sequences

from ground import seqimage
from ground import sequence as s
from protocol.node_dictionary import DICT_HASH

TEXT = ("ilrs-sequence 1\nname night\n"
        "+00:00:05 load_switch channel=payload_a on=false on-fail skip\n"
        "wait battery_soc < 30 timeout 00:10:00 on-fail safe\n")
# [1, 0x1CCB0782, "night", [[0, 5000, 3, [4, false], 1], [1, 11, 0, 30.0, 600000, 2]]]
IMAGE = bytes.fromhex(
    "84 01 1a 1c cb 07 82 65 6e 69 67 68 74 82"
    " 85 00 19 13 88 03 82 04 f4 01"
    " 86 01 0b 00 f9 4f 80 1a 00 09 27 c0 02")


def test_the_exact_image_bytes() -> None:
    image = seqimage.compile(s.parse(TEXT), 0x1CCB0782)
    assert image == IMAGE
    assert seqimage.digest(image) == hashlib.sha256(IMAGE).digest()
    assert seqimage.hash_prefix(image) == int.from_bytes(hashlib.sha256(IMAGE).digest()[:4],
                                                         "big")
    assert seqimage.compile(s.parse(TEXT))[3:7] == DICT_HASH.to_bytes(4, "big")


def test_decode_reads_the_image_back() -> None:
    h, seq = seqimage.decode(IMAGE, 0x1CCB0782)
    assert h == 0x1CCB0782
    assert s.render(seq) == ("ilrs-sequence 1\nname night\n"
                             "+00:00:05 load_switch channel=payload_a on=false on-fail skip\n"
                             "wait battery_soc < 30 timeout 00:10:00 on-fail safe\n")


def _image(item: object) -> bytes:
    return cbor2.dumps(item, canonical=True)


H = DICT_HASH
GOOD_STEP = [0, 0, 1, [], 0]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff", "not CBOR"),
        (IMAGE[:-1], "not CBOR"),
        (bytes.fromhex("84 01 1b 00 00 00 00") + IMAGE[3:], "not in canonical CBOR"),
        (_image([1, H, "n", [GOOD_STEP]]) + b"\x00", "1 bytes after the image"),
        (bytes.fromhex("84 01 1a") + H.to_bytes(4, "big") + bytes.fromhex("61 6e 81 85 00 18 00"
                                                                         " 01 80 00"),
         "not in canonical CBOR"),
        (_image([1, H, "n"]), "not an array of 4 items"),
        (_image([2, H, "n", [GOOD_STEP]]), "version 2, this ground reads 1"),
        (_image([1, H ^ 1, "n", [GOOD_STEP]]), f"built against dictionary 0x{H ^ 1:08x}"),
        (_image([1, H, "", [GOOD_STEP]]), "the sequence name is empty"),
        (_image([1, H, "x" * 17, [GOOD_STEP]]), "is 17 bytes"),
        (_image([1, H, b"n", [GOOD_STEP]]), "name not text"),
        (_image([1, H, "n", []]), "steps must be an array of 1..256"),
        (_image([1, H, "n", [GOOD_STEP] * 257]), "steps must be an array of 1..256"),
        (_image([1, H, "n", [[2, 0]]]), "step 0: not a command or wait step"),
        (_image([1, H, "n", [[0, 0, 1, []]]]), "step 0: a command step is"),
        (_image([1, H, "n", [[0, -1, 1, [], 0]]]), "step 0 delay_ms must be an integer"),
        (_image([1, H, "n", [[0, 2**32, 1, [], 0]]]), "step 0 delay_ms must be an integer"),
        (_image([1, H, "n", [[0, 0, 999, [], 0]]]), "step 0: unknown command id 999"),
        (_image([1, H, "n", [[0, 0, 1, [], 3]]]), "step 0 on_fail must be an integer 0..2"),
        (_image([1, H, "n", [[0, 0, 2, [7], 0]]]), "step 0: set_mode: argument mode: 7 is out"),
        (_image([1, H, "n", [[0, 0, 2, [], 0]]]), "step 0: "),
        (_image([1, H, "n", [[0, 0, 3, [4, 0], 0]]]), "not in their wire form"),
        (_image([1, H, "n", [[1, 11, 0, 30.0, 0]]]), "step 0: a wait step is"),
        (_image([1, H, "n", [[1, 99, 0, 30.0, 0, 0]]]), "unknown channel id 99"),
        (_image([1, H, "n", [[1, 11, 6, 30.0, 0, 0]]]), "step 0 op must be an integer 0..5"),
        (_image([1, H, "n", [[1, 11, 0, 30, 0, 0]]]), "value 30 is not in its wire form"),
        (_image([1, H, "n", [[1, 8, 0, 1, 0, 0]]]), "value 1 is not in its wire form"),
        (_image([1, H, "n", [[1, 1, 0, 300, 0, 0]]]), "out of range"),
        (_image([1, H, "n", [[1, 11, 0, 30.0, 2**32, 0]]]), "step 0 timeout_ms must be"),
    ],
)
def test_decode_refuses_what_is_not_an_image(data: bytes, reason: str) -> None:
    with pytest.raises(seqimage.ImageError) as info:
        seqimage.decode(data)
    assert reason in str(info.value)
    assert str(info.value).startswith("not a sequence image: ")


@settings(max_examples=300, deadline=None)
@given(sequences())
def test_decode_of_compile_is_the_sequence(seq: s.Sequence) -> None:
    image = seqimage.compile(seq)
    h, back = seqimage.decode(image)
    assert h == DICT_HASH
    # the image holds neither the trigger nor the declared modes: the text does
    assert _without_lines(back) == _without_lines(seq._replace(trigger=None, level=0.0,
                                                               modes=None))
    assert seqimage.compile(back) == image
