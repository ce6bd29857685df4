"""TLS for Hiscore connections: `tls_context` builds the `ssl.SSLContext` that `connect` takes.

    ctx = hiscore.tls_context(ca_file="ca.pem")                  # a private CA
    ctx = hiscore.tls_context(ca_file="ca.pem", cert_file="client.pem", key_file="client.key")  # mTLS
    client = await hiscore.AsyncClient.connect("scores.example.com", 7450, ssl=ctx)

`ssl=True` is the same as `tls_context()`: the system's trust store.
"""
from __future__ import annotations

import ssl as _ssl
from typing import Optional, Union

#: What `connect(ssl=...)` accepts: a context, True (system trust store) or None/False (plain TCP).
SSLOption = Union[_ssl.SSLContext, bool, None]


def tls_context(ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                key_file: Optional[str] = None) -> _ssl.SSLContext:
    """A client context: TLS 1.2 or later, the server's certificate and host name verified.

    `ca_file` (PEM) replaces the system trust store; `cert_file` + `key_file` (PEM) are the client
    certificate for servers started with `--tls-client-ca`.
    """
    ctx = _ssl.create_default_context(_ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = _ssl.TLSVersion.TLSv1_2
    if cert_file is not None or key_file is not None:
        if cert_file is None:
            raise ValueError("key_file needs cert_file")
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def resolve(option: SSLOption) -> Optional[_ssl.SSLContext]:
    """The context for `connect(ssl=option)`; None means plain TCP."""
    if option is None or option is False:
        return None
    if option is True:
        return tls_context()
    if isinstance(option, _ssl.SSLContext):
        return option
    raise TypeError(f"ssl must be an ssl.SSLContext, True or None, not {type(option).__name__}")
