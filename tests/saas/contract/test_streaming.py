"""The streamed reads of upload validation agree with the whole-file parsers they replaced.

``check_utf8_stream`` reads in chunks (here as small as one byte, so characters and lines split
across chunk boundaries); ``validate_text_csv`` never holds the rows. Both must say exactly
what ``decode_text`` and ``parse_text_csv`` say about the same bytes.
"""

from __future__ import annotations

import io
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saas.common.errors import ValidationFailed
from saas.contract import ContractError
from saas.contract.datasets import BOM, check_utf8_stream, decode_text, parse_text_csv
from saas.datasets.validation import validate_text_csv

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
mixed = st.lists(
    st.one_of(
        texts.map(lambda t: t.encode()),
        st.binary(max_size=3),
        st.sampled_from([b"\n", b"\r\n", b" ", BOM, b"\xe2\x82", b"\xac"]),
    ),
    max_size=12,
).map(b"".join)


def _outcome(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ContractError as exc:
        return exc.detail, exc.errors
    return None


@settings(max_examples=400, deadline=None)
@given(data=mixed, chunk=st.integers(min_value=1, max_value=8))
def test_check_utf8_stream_agrees_with_decode_text(data, chunk):
    expected = _outcome(decode_text, data)
    assert _outcome(check_utf8_stream, io.BytesIO(data), chunk_size=chunk) == expected


def test_check_utf8_stream_counts_line_feeds():
    assert check_utf8_stream(io.BytesIO(b"a\nb\r\nc")) == 2
    assert check_utf8_stream(io.BytesIO(BOM + b"a\n")) == 1


cells = st.one_of(
    st.sampled_from(["", " ", "a", "b", "c", "x, y", 'q"uote', "multi\nline", "  b  "]), texts
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(cells, cells), max_size=12),
    header=st.sampled_from(["text,label", " text , label ", "label,text", "text"]),
)
def test_validate_text_csv_reads_what_parse_text_csv_reads(rows, header):
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    buf.write(header + "\n")
    w.writerows(rows)
    data = buf.getvalue().encode()
    try:
        parsed = parse_text_csv(data)
    except ContractError as exc:
        try:
            validate_text_csv(data)
        except ValidationFailed as got:
            assert (got.detail, got.errors) == (exc.detail, exc.errors)
            return
        raise AssertionError("validate_text_csv accepted what parse_text_csv refused") from exc
    classes = Counter(e.label for e in parsed.examples)
    try:
        v = validate_text_csv(data)
    except ValidationFailed as got:
        report = got.extra.get("report")
        if report is not None:
            assert report["rows"] == parsed.rows
            assert report["examples_per_class"] == dict(sorted(classes.items()))
        return
    assert v.classes == dict(sorted(classes.items()))
    assert v.report["rows"] == parsed.rows and v.num_examples == len(parsed.examples)
