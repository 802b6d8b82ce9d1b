"""The dataset parsers' rules, and the four cases where upload and training used to disagree.

Each divergence of issue 9 has a rule here; ``tests/workers/ml/test_dataset_agreement.py`` checks
that the training runner reads the same files the same way.
"""

from __future__ import annotations

import io

import pytest

from saas.common.errors import ValidationFailed
from saas.contract import ContractError
from saas.contract.datasets import (
    MissingColumns,
    image_members,
    iter_text_examples,
    member_class,
    parse_text_csv,
    row_problems_summary,
)
from saas.datasets.validation import validate_image_zip, validate_text_csv
from tests.conftest import image_zip, png_bytes

ROWS = "".join(f"good {i},pos\nbad {i},neg\n" for i in range(3))


def test_a_space_after_the_header_comma_is_normalised():
    data = f"text, label\n{ROWS}".encode()
    parsed = parse_text_csv(data)
    assert parsed.columns == ["text", "label"] and not parsed.problems
    assert len(parsed.examples) == 6
    assert validate_text_csv(data).classes == {"neg": 3, "pos": 3}


@pytest.mark.parametrize("blank", [",", " , ", ",,", ""])
def test_a_row_of_only_separators_is_a_blank_line(blank):
    data = f"text,label\n{ROWS}{blank}\n".encode()
    parsed = parse_text_csv(data)
    assert parsed.rows == 6 and not parsed.problems
    assert validate_text_csv(data).report["rows"] == 6


def test_a_quoted_label_holding_a_newline_is_refused_with_its_line():
    data = f'text,label\n{ROWS}"late one","p\nos"\n'.encode()
    parsed = parse_text_csv(data)
    assert [p["kind"] for p in parsed.problems] == ["label_newline"]
    assert parsed.problems[0]["line"] == 9  # the line the record ends on, as for other rows
    assert "line break in a label" in row_problems_summary(parsed)
    with pytest.raises(ValidationFailed) as err:
        validate_text_csv(data)
    assert [e["message"] for e in err.value.errors] == [
        "line 9: the label 'p\\nos' contains a line break (labels are one a line)"
    ]


def test_a_newline_inside_a_quoted_text_is_fine():
    data = f'text,label\n{ROWS}"two\nlines",pos\n'.encode()
    parsed = parse_text_csv(data)
    assert not parsed.problems and parsed.examples[-1].text == "two\nlines"


def test_texts_are_kept_as_written_and_labels_stripped():
    parsed = parse_text_csv(b'text,label\n" spaced ", pos \n')
    assert parsed.examples[0].text == " spaced " and parsed.examples[0].label == "pos"


def test_fatal_problems_raise_contract_errors():
    with pytest.raises(MissingColumns) as err:
        parse_text_csv(b"body,label\nx,y\n")
    assert err.value.missing == ["text"] and err.value.found == ["body", "label"]
    with pytest.raises(ContractError, match="not valid UTF-8") as err:
        parse_text_csv(b"text,label\n\xff,x\n")
    assert err.value.errors[0]["line"] == 2
    with pytest.raises(ContractError, match="empty"):
        parse_text_csv(b"  \n")


def test_an_empty_folder_segment_is_dropped_from_the_class():
    assert member_class("a//1.png") == "a"
    assert member_class("top/a//1.png") == "a"
    assert member_class("//1.png") is None  # not inside a class folder
    files = {f"{c}//{i}.png": png_bytes(10 * k + i) for k, c in enumerate("ab") for i in range(2)}
    validated = validate_image_zip(io.BytesIO(image_zip(files)))
    assert validated.classes == {"a": 2, "b": 2}


def test_image_members_skip_junk_and_report_loose_files():
    names = ["a/", "a/1.png", "a/2.JPG", "a/notes.txt", "__MACOSX/a/._1.png", "a/.x.png", "x.png"]
    found = list(image_members(names))
    assert [(m.name, m.label) for m in found if not isinstance(m, str)] == [
        ("a/1.png", "a"),
        ("a/2.JPG", "a"),
    ]
    assert [m for m in found if isinstance(m, str)] == ["x.png"]  # notes.txt: validation's call


def test_a_class_folder_with_a_line_break_is_refused_like_a_csv_label():
    files = {f"{c}/{i}.png": png_bytes(i) for c in ("a", "b\nc") for i in range(2)}
    with pytest.raises(ValidationFailed) as err:
        validate_image_zip(io.BytesIO(image_zip(files)))
    refused = [e for e in err.value.errors if "line break" in e["message"]]
    assert [e["member"] for e in refused] == ["b\nc/0.png", "b\nc/1.png"]


@pytest.mark.parametrize("data", [b"", b"\xff\xfe not utf-8", b"text,label\na,b\n"])
def test_the_same_column_twice_is_named_before_the_bytes_are_read(data):
    with pytest.raises(ContractError) as exc:
        parse_text_csv(data, text_column="text", label_column="text")
    assert exc.value.errors[0]["field"] == "label_column"
    with pytest.raises(ContractError) as exc:
        list(
            iter_text_examples(io.StringIO("text,label\na,b\n"), text_column="x", label_column="x")
        )
    assert exc.value.errors[0]["field"] == "label_column"


def test_streaming_and_whole_file_parsing_agree():
    data = b'text, label\n"a\nb",pos\n,\n"",neg\nc,\nd,neg\n"unterminated,pos\n'
    parsed = parse_text_csv(data)
    streamed = list(iter_text_examples(io.StringIO(data.decode(), newline="")))
    assert streamed == parsed.examples and [e.label for e in streamed] == ["pos", "neg"]
