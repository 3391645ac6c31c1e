"""PostgreSQL connection strings: the keyword/value form, and keeping secrets out of text.

libpq accepts two forms (PostgreSQL docs, "Connection Strings"): URIs
(`postgresql://user:password@host:port/db?param=value`) and keyword/value strings
(`host=localhost password='s3 cret' dbname=prices`). A password can hide in a URI's userinfo, in a
URI query parameter (`?password=`, even percent-encoded as `?passw%6Frd=`) or in a keyword.
`redact` is the one function that takes them out of anything binprice shows: URLs, error
messages, log lines.

Imported by every command through `settings`, so it stays cheap: keyword/value strings are
parsed by libpq itself (`psycopg.conninfo`), imported only when one is given; `redact` never
imports psycopg (it finds a keyword's secret with the pattern that masks it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from urllib.parse import quote, unquote, urlsplit

#: How a keyword/value string is written (PostgreSQL docs, "Keyword/Value Connection Strings").
KEYWORD_FORM_HINT = (
    "write keyword=value pairs with libpq's keywords (host, port, dbname, user, password, "
    "sslmode, …), a value holding a space or a quote in single quotes with \\' and \\\\ "
    "escaped"
)
#: libpq parameters whose values are secrets.
SECRET_KEYWORDS = frozenset({"password", "sslpassword"})
MASK = "***"

# A URL token (up to whitespace), or a secret keyword with its value: quoted (backslash escapes,
# possibly unterminated) or bare.
_SECRETS_IN_TEXT = (
    r"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*://\S*)"
    r"|(?P<key>\b(?:ssl)?password\s*=\s*)(?P<value>'(?:\\.|[^'\\])*'?|\S*)"
)

_QUOTED_VALUE = r"'(?P<inner>(?:\\.|[^'\\])*)'?"


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Compiled on first use: most commands never redact anything (saves start-up time)."""
    return re.compile(pattern, re.IGNORECASE)


def redact(text: str, conninfo: str | None = None) -> str:
    """`text` with every secret replaced by `***`: passwords in URLs (userinfo and query) and in
    keyword/value pairs, and any literal occurrence of the secrets of `conninfo` (by default
    `text` itself): a driver may quote what it was given, and a password may hold a space."""
    masked = _compiled(_SECRETS_IN_TEXT).sub(_mask_match, text)
    for secret in sorted(
        _secrets_of(text if conninfo is None else conninfo), key=len, reverse=True
    ):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            masked = masked.replace(form, MASK)
    return masked


def _mask_match(match: re.Match[str]) -> str:
    if match["url"] is not None:
        return _mask_url(match["url"])
    return f"{match['key']}{MASK}"


def _mask_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        # The userinfo ends at the LAST '@' of the text, wherever it is: a password holding an
        # unencoded ?, /, # or @ makes urlsplit and libpq disagree on where it ends (and both
        # may be wrong), so everything up to the last '@' goes. Masking too much beats too
        # little; only a URL with an '@' in its query or path loses more than its password.
        rest = f"{userinfo.split(':', 1)[0]}:{MASK}@{after}"
    head, question, query = rest.partition("?")
    if question:
        query = "&".join(_mask_param(param) for param in query.split("&"))
    return f"{scheme}://{head}{question}{query}"


def _mask_param(param: str) -> str:
    key, equals, _value = param.partition("=")
    return f"{key}={MASK}" if equals and unquote(key).lower() in SECRET_KEYWORDS else param


#: Pieces of a raw password (split where an unencoded ?, @, /, # or : cuts it) at least this
#: long are scrubbed from text on their own: a parser may have quoted one as a host or port.
#: Shorter ones would mask letters of ordinary words instead.
MIN_FRAGMENT = 4
_PASSWORD_CUTS = r"[?@/#:]"


def raw_password(url: str) -> str | None:
    """The password of a URL read from its raw text: from the first ':' of the userinfo to the
    LAST '@' (see `_mask_url`), percent-decoded; None without one."""
    rest = url.partition("://")[2]
    userinfo, at, _ = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return unquote(userinfo.split(":", 1)[1])


def _secrets_of(conninfo: str) -> set[str]:
    found: set[str] = set()
    if "://" in conninfo:
        raw = raw_password(conninfo)
        if raw:
            found.add(raw)
            found.update(
                piece for piece in re.split(_PASSWORD_CUTS, raw) if len(piece) >= MIN_FRAGMENT
            )
        try:
            parts = urlsplit(conninfo)
            password = parts.password
        except ValueError:
            password = None
            parts = None
        if password:
            found.add(unquote(password))
        if parts is not None:
            for param in parts.query.split("&"):
                key, _, value = param.partition("=")
                if unquote(key).lower() in SECRET_KEYWORDS and value:
                    found.add(unquote(value))
    else:
        # Found as `_SECRETS_IN_TEXT` masks them, not by libpq: a string libpq refuses (an
        # unknown keyword, a missing quote) may still hold a password a driver message repeats.
        for match in _compiled(_SECRETS_IN_TEXT).finditer(conninfo):
            if match["value"]:
                found.add(_unquote_value(match["value"]))
    return found


def _unquote_value(value: str) -> str:
    """A keyword's value as libpq reads it: outer single quotes off, backslash escapes undone."""
    quoted = _compiled(_QUOTED_VALUE).fullmatch(value)
    return _compiled(r"\\(.)").sub(r"\1", value if quoted is None else quoted["inner"])


def is_keyword_form(text: str) -> bool:
    """True for a keyword/value string (libpq: no URI prefix, and an '=')."""
    return "://" not in text and "=" in text


def parse_keywords(text: str) -> dict[str, str]:
    """Parse a libpq keyword/value string with libpq's own parser. Raises ValueError with a
    message that quotes none of the input (libpq's may quote a piece of a password)."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(text)
    except Error:
        raise ValueError(f"libpq cannot parse it; {KEYWORD_FORM_HINT}") from None
    return {key: str(value) for key, value in params.items()}


def keywords_to_url(params: Mapping[str, str]) -> str:
    """The libpq URI equivalent to keyword/value `params`: user and password as userinfo, the
    database as the path, every other keyword (host, port, sslmode, …) as a query parameter."""
    rest = dict(params)
    user = rest.pop("user", "")
    password = rest.pop("password", None)
    database = rest.pop("dbname", "")
    userinfo = quote(user, safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    netloc = f"{userinfo}@" if userinfo else ""
    return f"postgresql://{netloc}/{quote(database, safe='')}{_query(rest.items())}"


def _query(items: Iterable[tuple[str, str]]) -> str:
    pairs = [f"{quote(k, safe='')}={quote(v, safe='/,')}" for k, v in items]
    return "?" + "&".join(pairs) if pairs else ""
