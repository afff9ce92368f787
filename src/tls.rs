//! The rustls client configuration `connect` uses for `wss://` when the
//! [`ClientBuilder`](crate::ClientBuilder) gives none: the roots the
//! features choose, built once per process.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};

/// The default configuration: the process's installed `CryptoProvider`
/// (ring's with feature `rustls-ring` when none is), the safe default
/// versions, the roots the features choose.
fn default_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(Arc::clone(config));
    }
    let config = ClientConfig::builder_with_provider(provider()?)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots())
        .with_no_client_auth();
    Ok(Arc::clone(CONFIG.get_or_init(|| Arc::new(config))))
}

/// The process's default provider, if one was installed; else ring's.
fn provider() -> Result<Arc<CryptoProvider>, rustls::Error> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Ok(Arc::clone(installed));
    }
    #[cfg(feature = "rustls-ring")]
    return Ok(Arc::new(rustls::crypto::ring::default_provider()));
    #[cfg(not(feature = "rustls-ring"))]
    Err(rustls::Error::General(
        "no rustls CryptoProvider: install one with CryptoProvider::install_default \
         (aws-lc-rs, ring, …) or enable the rustls-ring feature"
            .to_owned(),
    ))
}

/// The configuration and server name for `client`'s `wss://` connection:
/// its own [`tls_config`](crate::ClientBuilder::tls_config) or the default.
pub(crate) fn for_client(
    client: &crate::ClientBuilder,
) -> std::io::Result<(Arc<ClientConfig>, rustls::pki_types::ServerName<'static>)> {
    let config = match client.tls() {
        Some(config) => Arc::clone(config),
        None => default_config().map_err(std::io::Error::other)?,
    };
    let name = rustls::pki_types::ServerName::try_from(client.request().host().to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok((config, name))
}

/// Every root the enabled features bring; none with `rustls` alone.
fn roots() -> RootCertStore {
    #[allow(unused_mut)]
    let mut roots = RootCertStore::empty();
    #[cfg(feature = "rustls-tls-webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "rustls-tls-native-roots")]
    {
        // Certificates the platform store holds but rustls cannot parse are
        // skipped, as a browser would; the rest are trusted.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
    }
    roots
}
