"""The dataset presenters (offending CSV lines, class rows, thumbnails): plain values in, plain
values out, no database."""

from __future__ import annotations

from saas.dashboard import presenters as p


def test_offending_lines_attach_the_raw_line_and_strip_the_line_prefix():
    data = b"text,label\r\nfine,a\r\n,\r\nlast,b\n"
    out = p.offending_lines(
        data,
        [
            {"field": None, "message": "line 3: the text is empty", "line": 3},
            {"field": "label", "message": "only one class"},
        ],
    )
    assert out == [
        {"field": None, "message": "the text is empty", "line": 3, "text": ","},
        {"field": "label", "message": "only one class", "text": None},
    ]


def test_offending_lines_without_line_numbers_are_returned_unchanged():
    problems = [{"field": None, "message": "line 2: x"}, {"message": "y", "line": "2"}]
    assert p.offending_lines(b"a\nb\n", problems) == problems


def test_offending_lines_truncate_long_lines_and_replace_bad_bytes():
    long = b"\xff" + b"x" * 500
    out = p.offending_lines(b"h\n" + long + b"\n", [{"message": "line 2: bad", "line": 2}])
    assert out[0]["text"] == "\ufffd" + "x" * (p.OFFENDING_LINE_CHARS - 1)
    assert len(out[0]["text"]) == p.OFFENDING_LINE_CHARS


def test_offending_lines_past_the_end_of_the_file_have_no_text():
    out = p.offending_lines(b"only\n", [{"message": "line 9: gone", "line": 9}])
    assert out == [{"message": "gone", "line": 9, "text": None}]
    assert p.offending_lines(b"", [{"message": "line 1: x", "line": 1}])[0]["text"] is None


def test_offending_lines_keep_a_message_naming_another_line():
    out = p.offending_lines(b"a\nb\n", [{"message": "line 1: see line 2", "line": 2}])
    assert out == [{"message": "line 1: see line 2", "line": 2, "text": "b"}]


def test_class_rows_largest_first_ties_by_label():
    assert p.class_rows({"b": 2, "a": 2, "c": 9, "d": 1}) == [
        ("c", 9),
        ("a", 2),
        ("b", 2),
        ("d", 1),
    ]
    assert p.class_rows({}) == []
    assert p.class_rows({"only": 3}) == [("only", 3)]


def test_thumbnails_are_numbered_in_order():
    assert p.thumbnails([("cat/1.png", "cat"), ("dog/7.jpg", "dog")]) == [
        {"n": 0, "label": "cat", "name": "cat/1.png"},
        {"n": 1, "label": "dog", "name": "dog/7.jpg"},
    ]
    assert p.thumbnails([]) == []
