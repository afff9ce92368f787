//! WebSocket extensions (RFC 6455 §9). permessage-deflate (RFC 7692) is the
//! one in use; it claims RSV1.

#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
pub mod deflate;

use crate::handshake::{AcceptOptions, Accepted, ClientRequest, HandshakeError, RequestView};
use crate::{Config, Connection};

/// What the handshake agreed on, to apply to the new connection.
#[cfg(feature = "deflate")]
pub(crate) type Negotiated = Option<deflate::DeflateParams>;
/// What the handshake agreed on: nothing, without extensions compiled in.
#[cfg(not(feature = "deflate"))]
#[derive(Debug, Default)]
pub(crate) struct Negotiated(());

/// A server adapter's negotiation: unless the application answered the
/// extensions itself, permessage-deflate is accepted per `config.deflate`.
pub(crate) fn server_negotiate(
    config: &Config,
    view: &RequestView<'_>,
    options: AcceptOptions,
) -> (AcceptOptions, Negotiated) {
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate
        && !options.has_extensions()
        && let Some((answer, params)) = deflate.negotiate(&view.extensions())
    {
        return (options.extensions(answer), Some(params));
    }
    let _ = (config, view);
    (options, Negotiated::default())
}

/// A client adapter's offer: `config.deflate`'s, unless the request offers
/// permessage-deflate itself.
pub(crate) fn client_offer(config: &Config, request: &ClientRequest) -> ClientRequest {
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate
        && !request.offers(deflate::NAME)
    {
        return request.clone().extension(deflate.offer());
    }
    let _ = config;
    request.clone()
}

/// A client adapter's check of the server's answer.
pub(crate) fn client_accept(
    config: &Config,
    accepted: &Accepted,
) -> Result<Negotiated, HandshakeError> {
    #[cfg(feature = "deflate")]
    if let Some(deflate) = &config.deflate {
        return deflate.accept(&accepted.extensions());
    }
    let _ = (config, accepted);
    Ok(Negotiated::default())
}

/// Applies what was negotiated to a new connection.
pub(crate) fn apply(conn: &mut Connection, negotiated: Negotiated) {
    #[cfg(feature = "deflate")]
    if let Some(params) = negotiated {
        conn.set_deflate(params);
    }
    let _ = (conn, negotiated);
}
