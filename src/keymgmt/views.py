"""Views of keymgmt objects for Jupyter and IPython (metadata only, never key material).

keymgmt's own types render by themselves in a notebook (``_repr_html_``) and
in IPython (``_repr_pretty_``): ``KeyManager``, ``KeyInfo`` (with its version
timeline), ``KeyVersionInfo``, ``AuditEntry``, ``AuditLog``, the PKI's
``VerifiedPath``, ``IssuedCertificate`` and ``CertificateAuthority``, the
handshake's ``Session`` and ``HandshakeComplete``, and the KDC's
``CompromiseReport``, ``PrincipalInfo`` and ``GrantRecord``.

``cryptography``'s types and plain lists are not ours, so they are wrapped
instead of patched: ``show(cert)``, ``show(crl)``, ``show(chain)`` (a list of
certificates, leaf first), ``show(km.audit.tail(10))``, ``show(km.kdc.list())``
and ``show(km.kdc.grants())``::

    from keymgmt.views import show
    show(km.pki.ca("root").crl())
"""

from keymgmt._views import View, html, show, text

__all__ = ["View", "html", "show", "text"]
