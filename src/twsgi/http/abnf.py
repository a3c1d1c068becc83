# -*- test-case-name: tests.http.test_abnf -*-
"""
The HTTP grammar that more than one part of twsgi checks, written once (as
h11's C{_abnf.py}): tokens, field values, request targets, hosts and status
lines, from RFC 9110, RFC 9112 and RFC 3986.  Every parser and every check of
what an application or a proxy sends imports it from here.

Patterns are compiled over bytes and match from the start; call
C{fullmatch} (or end the pattern with C{\\Z}) where the whole text must
match.  Pure: nothing here imports Twisted.
"""

from __future__ import annotations

import re

TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
"""
RFC 9110 section 5.6.2: the characters of a token, as the body of a regular
expression character class.
"""

TOKEN = re.compile(rb"[" + TCHAR + rb"]+")
"""
RFC 9110 section 5.6.2: C{token = 1*tchar} (a method, a field name, a
transfer coding).
"""

BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
"""
RFC 9110 section 5.5: a field value is VCHAR, obs-text, SP and HTAB; this
finds any other byte (NUL, CR, LF, DEL and the other controls).  A reason
phrase is made of the same bytes (RFC 9112 section 4).
"""

TARGET_CHARS = rb"[\x21-\x7e\x80-\xff]+"
"""
RFC 9112 section 3.2: a request target is a run of visible bytes (obs-text
allowed, as servers do; its form is checked apart).
"""

TARGET = re.compile(TARGET_CHARS + rb"\Z")

HOST = re.compile(
    rb"(?:\[[A-Za-z0-9\-._~!$&'()*+,;=:%]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)"
    rb"(?::[0-9]*)?\Z"
)
"""
RFC 9110 section 7.2: C{Host = uri-host [ ":" port ]}, as RFC 3986 spells
them: an IP literal in brackets or a reg-name (no colon, maybe empty), then
digits.
"""

STATUS = re.compile(rb"([1-5][0-9][0-9])(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
"""
RFC 9112 section 4: a status code of three digits, then maybe a space and a
reason phrase; used with C{fullmatch}.
"""

HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\Z")
"""
RFC 1123 section 2.1: a host name or an IPv4 address, as text (what a
C{--bind} address may name).
"""

__all__ = [
    "BAD_VALUE",
    "HOST",
    "HOST_NAME",
    "STATUS",
    "TARGET",
    "TARGET_CHARS",
    "TCHAR",
    "TOKEN",
]
