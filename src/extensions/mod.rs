//! WebSocket extensions (RFC 6455 §9). permessage-deflate (RFC 7692) is the
//! one in use; it claims RSV1.

#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
pub mod deflate;
