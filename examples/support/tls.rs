//! A fresh self-signed certificate for `localhost` and `127.0.0.1`, shared
//! by the `wss_server` and `axum_chat --tls` examples.

use std::sync::Arc;

/// A rustls server configuration (ring's provider) presenting a new
/// self-signed certificate and offering `alpn` in order, with the
/// certificate in PEM for a client to trust.
pub(crate) fn self_signed(alpn: &[&[u8]]) -> std::io::Result<(Arc<rustls::ServerConfig>, String)> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(std::io::Error::other)?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((Arc::new(config), cert.cert.pem()))
}
