//! The simulator's TLS: a certificate authority made at start (never written anywhere but the
//! kubeconfigs the simulator hands out, as `certificate-authority-data`) and a server certificate
//! it signs for `127.0.0.1` and `localhost`. Clients then send their bearer token (kubectl sends
//! none over plain HTTP), and the token is what the server checks.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Why the simulator's certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the simulator's TLS certificate: {0}")]
pub struct TlsError(String);

/// The CA's certificate (PEM, for kubeconfigs) and the server's TLS configuration.
#[derive(Clone)]
pub struct ServerTls {
    ca_pem: String,
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A fresh CA and server certificate (ECDSA P-256), valid from now for the simulator's life.
    pub fn generate() -> Result<Self, TlsError> {
        let err = |e: rcgen::Error| TlsError(e.to_string());
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(DnType::CommonName, "vmmem-sim CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

        let key = KeyPair::generate().map_err(err)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        leaf.distinguished_name
            .push(DnType::CommonName, "vmmem-sim");
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;

        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| TlsError(e.to_string()))?;
        // HTTP/1.1 only, as the plain server was: exec's WebSocket upgrade needs it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            ca_pem: ca_cert.pem(),
            config: Arc::new(config),
        })
    }

    /// The CA certificate clients must trust, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_ca_and_a_server_config() {
        let tls = ServerTls::generate().unwrap();
        assert!(tls.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(tls.config().alpn_protocols, vec![b"http/1.1".to_vec()]);
        // Each simulator gets its own CA.
        assert_ne!(ServerTls::generate().unwrap().ca_pem(), tls.ca_pem());
    }
}
