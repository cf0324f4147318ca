"""keymgmt's PKI: CAs in the store, profiles, CSRs, CRLs, OCSP, verification.

Start from ``km.pki`` (a :class:`PKI`)::

    root = km.pki.create_root_ca("root")
    issuing = root.create_intermediate("issuing")
    cert = issuing.issue(csr_pem, profile=TLS_SERVER)
    issuing.revoke(cert.serial_number, RevocationReason.KEY_COMPROMISE)
    crl = issuing.crl()
    km.pki.verify(cert, purpose=Purpose.TLS_SERVER, name="www.example")

Returned objects are ``cryptography.x509`` types. See ``docs/pki.md`` for
how verification is built and why.
"""

from keymgmt.pki._ca import PKI, CertificateAuthority, IssuedCertificate, IssueRequest
from keymgmt.pki._crl import CRLEntry, CRLIndex, build_crl
from keymgmt.pki._export import (
    Encoding,
    export_certificate,
    export_chain,
    export_crl,
    export_pkcs12,
    export_private_key,
)
from keymgmt.pki._keys import CA_KEY_TYPES, generate_key
from keymgmt.pki._ocsp import (
    DEFAULT_OCSP_MAX_AGE,
    CertStatus,
    OCSPResponder,
    OCSPStatus,
    build_ocsp_request,
    check_ocsp_response,
)
from keymgmt.pki._parse import (
    load_certificate,
    load_certificates,
    load_crl,
    load_csr,
    load_ocsp_request,
    load_ocsp_response,
)
from keymgmt.pki._profiles import (
    CODE_SIGNING,
    INTERMEDIATE_CA,
    OCSP_SIGNING,
    PROFILES,
    ROOT_CA,
    TLS_CLIENT,
    TLS_SERVER,
    Profile,
    parse_names,
)
from keymgmt.pki._verify import (
    NOT_OURS,
    CertificateVerifier,
    Purpose,
    RevocationLookup,
    RevocationPolicy,
    RevocationSource,
    VerificationFailure,
    VerifiedPath,
)

__all__ = [
    "CA_KEY_TYPES",
    "CODE_SIGNING",
    "DEFAULT_OCSP_MAX_AGE",
    "INTERMEDIATE_CA",
    "NOT_OURS",
    "OCSP_SIGNING",
    "PKI",
    "PROFILES",
    "ROOT_CA",
    "TLS_CLIENT",
    "TLS_SERVER",
    "CRLEntry",
    "CRLIndex",
    "CertStatus",
    "CertificateAuthority",
    "CertificateVerifier",
    "Encoding",
    "IssuedCertificate",
    "IssueRequest",
    "OCSPResponder",
    "OCSPStatus",
    "Profile",
    "Purpose",
    "RevocationLookup",
    "RevocationPolicy",
    "RevocationSource",
    "VerificationFailure",
    "VerifiedPath",
    "build_crl",
    "build_ocsp_request",
    "check_ocsp_response",
    "export_certificate",
    "export_chain",
    "export_crl",
    "export_pkcs12",
    "export_private_key",
    "generate_key",
    "load_certificate",
    "load_certificates",
    "load_crl",
    "load_csr",
    "load_ocsp_request",
    "load_ocsp_response",
    "parse_names",
]
