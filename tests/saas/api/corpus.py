"""The kept corpus of nasty inputs, replayed against every route and form by
``tests/saas/api/test_corpus.py`` and ``tests/saas/dashboard/test_fuzz_forms.py``.

``STRINGS`` are text values (sent in JSON bodies, form fields, query parameters and path
segments); ``RAW_SEGMENTS`` are percent-encoded bytes for a path segment or a query value,
which is how invalid UTF-8 and encoded NUL reach the server; ``NUMBERS`` are JSON numbers
past every column's range. Each entry is here because a class of input like it broke a route
once, or could: the comment says which. Add to it whatever a fuzz run finds.
"""

from __future__ import annotations

STRINGS: list[str] = [
    "",
    " ",
    "\x00",  # PostgreSQL text and jsonb cannot hold NUL: a DataError (500) if it reaches a query
    "a\x00b",
    "\\u0000",  # the JSON escape spelled out: harmless text, must stay text
    "\ud800",  # a lone surrogate: not encodable as UTF-8 (psycopg raises on it)
    "x\udfffy",
    "\x01\x02\x1b[31m\x7f",  # control characters and a terminal escape
    "\r\n",
    "a\rb\nc\td",
    "\u2028\u2029",  # JavaScript line separators
    "\ufeff",  # a BOM
    "\u202eevil",  # right-to-left override
    "e\u0301" * 40,  # combining marks
    "🦄" * 20,  # astral-plane characters (4 bytes each in UTF-8)
    "Ω" * 201,  # just over the 200-character names
    "a" * 256,  # over varchar(255)
    "a" * 5000,  # over every varchar
    "../../../../etc/passwd",
    "/absolute/path",
    "C:\\Windows\\system32",
    "%00",
    "%ff",
    "' OR '1'='1' --",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "${jndi:ldap://x}",
    "null",
    "true",
    "-1",
    "0",
    "1e400",
    "99999999999999999999999999999999",
    "NaN",
    "ds_",
    "ds_\x00",
    "tj_" + "0" * 300,
    "mdl_🦄",
    "owner@acme.test\x00",
    "a@b.c" + "c" * 300,
    "text-classification\x00",
]

#: Percent-encoded bytes (already encoded: they go into the URL as they are).
RAW_SEGMENTS: list[str] = [
    "%00",
    "a%00b",
    "%ff",
    "%c3%28",  # invalid UTF-8 continuation
    "%ed%a0%80",  # a UTF-8-encoded surrogate (invalid UTF-8)
    "%f4%90%80%80",  # past U+10FFFF
    "%c0%af",  # overlong "/"
    "%e2%80%ae",  # a valid RTL override
    "%2e%2e%2f%2e%2e%2f",
    "%25",
    "%",
    "%zz",
]

NUMBERS: list[object] = [
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    10**400,
    -1,
    1.5,
    1e308,
    -0.0,
]

#: Values of the wrong JSON type for any field.
WRONG_TYPES: list[object] = [
    None,
    True,
    [],
    ["a"],
    {},
    {"a": 1},
    [[[[[]]]]],
    {"\x00": "\x00"},
]

#: Header values (latin-1 only: WSGI headers are bytes; CR/LF cannot be sent at all).
HEADERS: list[str] = [
    "\x00",
    "a\x00b",
    "\x01\x7f",
    "ÿ" * 10,
    "a" * 5000,
    "Bearer",
    "Bearer ",
    "Bearer \x00",
    "Bearer ÿÿÿ",
    "Bearer " + "a" * 5000,
    "Basic Zm9vOmJhcg==",
    "bearer tyk_x",
    " ",
    "",
]
