"""``tls:``: one block, the same for every probe kind that speaks TLS (https://, wss://):
how the server is verified and, for mutual TLS, the client certificate the probe presents."""

from __future__ import annotations

from pydantic import Field, model_validator

from monitor.config.schema.base import Shared


class TlsSpec(Shared):
    """TLS settings of an https:// or wss:// target."""

    insecure_skip_verify: bool = Field(
        False, description="do not verify the certificate chain or host name (the expiry is "
        "still exported)")
    ca_file: str | None = Field(
        None, description="PEM file of the CAs to verify the server with, instead of the "
        "system's")
    server_name: str | None = Field(
        None, description="the name sent in SNI and verified, instead of the URL's host")
    cert_file: str | None = Field(
        None, description="mutual TLS: PEM file of the client certificate (and chain) the "
        "probe presents; its key in key_file, or in this file too")
    key_file: str | None = Field(
        None, description="mutual TLS: PEM file of the client certificate's private key "
        "(needs cert_file)")

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsSpec:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file (the client certificate it belongs to)")
        return self


DEFAULT_TLS = TlsSpec()
