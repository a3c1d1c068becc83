"""
Tests for L{twsgi.http.shortage}: the status for an L{OSError}, and the
C{Retry-After} of a 503.
"""

from __future__ import annotations

import errno
import os

from twisted.trial.unittest import SynchronousTestCase

from twsgi.http.parse import errorResponse
from twsgi.http.shortage import retryAfterFields, statusForOSError


class StatusForOSErrorTests(SynchronousTestCase):
    """
    Tests for L{statusForOSError}.
    """

    def test_table(self) -> None:
        """
        Out of descriptors or memory is a 503, out of storage a 507, any
        other error (or none) a 500.
        """
        for code, status in [
            (errno.EMFILE, 503),
            (errno.ENFILE, 503),
            (errno.ENOMEM, 503),
            (errno.ENOBUFS, 503),
            (errno.ENOSPC, 507),
            (errno.EDQUOT, 507),
            (errno.EFBIG, 507),
            (errno.EIO, 500),
            (errno.EROFS, 500),
            (errno.EACCES, 500),
        ]:
            error = OSError(code, os.strerror(code))
            self.assertEqual(statusForOSError(error), status, errno.errorcode[code])
        self.assertEqual(statusForOSError(OSError("no errno")), 500)


class RetryAfterTests(SynchronousTestCase):
    """
    Tests for L{retryAfterFields} and its use in L{errorResponse}.
    """

    def test_only503(self) -> None:
        """
        A 503 carries C{Retry-After: 1}; no other status does.
        """
        self.assertEqual(retryAfterFields(503), [(b"Retry-After", b"1")])
        for status in [500, 507, 429, 413]:
            self.assertEqual(retryAfterFields(status), [], status)

    def test_errorResponse(self) -> None:
        """
        The HTTP/1.1 error response of a 503 has C{Retry-After}, that of a
        507 its reason phrase and none.
        """
        self.assertEqual(
            errorResponse(503, "busy"),
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 26\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
            b"Service Unavailable: busy\n",
        )
        response = errorResponse(507, "full")
        self.assertTrue(response.startswith(b"HTTP/1.1 507 Insufficient Storage\r\n"))
        self.assertNotIn(b"Retry-After", response)
