"""Property-based (hypothesis): the dataset parsers take any bytes and any member names.

``parse_text_csv`` either parses or raises its own ``ContractError``; whatever it accepts can
be stored (no NUL, no lone surrogate, in a text or a label). The archive member rules never
raise, and a name they call safe cannot leave the extraction folder. Upload validation
(``saas.datasets.validation``) turns every bad file into ``ValidationFailed``.
"""

from __future__ import annotations

import io
import posixpath

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saas.common.errors import ValidationFailed
from saas.contract import ContractError
from saas.contract.datasets import (
    image_members,
    member_class,
    parse_text_csv,
    unsafe_member_reason,
)
from saas.datasets.validation import validate_image_zip, validate_text_csv
from tests.conftest import image_zip, png_bytes
from tests.saas.api.corpus import STRINGS

SETTINGS = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
nasty = st.sampled_from(STRINGS)
cells = st.text(max_size=20) | nasty
csv_rows = st.lists(st.tuples(cells, cells), max_size=12)


def _csv(header: str, rows: list[tuple[str, str]]) -> bytes:
    lines = [header] + [",".join('"' + c.replace('"', '""') + '"' for c in row) for row in rows]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _storable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in s


@SETTINGS
@given(data=st.binary(max_size=300) | st.builds(_csv, st.just("text,label"), csv_rows))
def test_parse_text_csv_parses_or_says_why(data):
    try:
        parsed = parse_text_csv(data)
    except ContractError:
        return
    for example in parsed.examples:
        assert _storable(example.text) and _storable(example.label), example


def test_a_row_with_a_nul_is_refused_and_named():
    parsed = parse_text_csv(b"text,label\ngood,pos\nba\x00d,neg\nok,ne\x00g\n")
    assert [e.text for e in parsed.examples] == ["good"]
    assert [p["kind"] for p in parsed.problems] == ["nul", "nul"]
    assert parsed.problems[0]["message"] == "line 3: the row contains a NUL character"


@SETTINGS
@given(
    header=st.sampled_from(["text,label", "label,text", "text,label,extra"]) | cells,
    rows=csv_rows,
)
def test_upload_validation_refuses_with_validation_failed_only(header, rows):
    try:
        validate_text_csv(_csv(header, rows), text_column="text", label_column="label")
    except ValidationFailed as exc:
        assert exc.errors, exc.detail


@SETTINGS
@given(name=st.text(max_size=40) | nasty | st.builds("/".join, st.lists(cells, max_size=4)))
def test_member_rules_never_raise_and_safe_names_stay_inside(name):
    reason = unsafe_member_reason(name)
    member_class(name)
    list(image_members([name]))
    if reason is None:
        joined = posixpath.normpath(posixpath.join("/extract", name))
        assert joined == "/extract" or joined.startswith("/extract/"), name


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(names=st.lists(st.text(min_size=1, max_size=30) | nasty, min_size=1, max_size=4))
def test_image_zip_validation_with_any_member_names(names):
    files = {f"a/{i}.png": png_bytes(i) for i in range(3)}
    files |= {f"b/{i}.png": png_bytes(200 + i) for i in range(3)}
    for i, n in enumerate(names):
        if "\x00" in n or not _storable(n):
            continue  # zipfile cannot write these; the corpus upload test sends the others
        files[f"{n}/{i}.png"] = png_bytes(i)
        files[f"a/{n}{i}.png"] = png_bytes(i)
    try:
        result = validate_image_zip(io.BytesIO(image_zip(files)))
    except ValidationFailed as exc:
        assert exc.errors
        return
    assert all(_storable(label) for label in result.classes), result.classes
