//! What the opening handshake settled, kept with the connection: the
//! subprotocol, the request target, and a value the server's request
//! callback handed on to whoever runs the connection.

use std::any::Any;
use std::fmt;

use crate::admission::Permit;
use crate::handshake::split_target;

/// The record of an opening handshake. Boxed in the connection and made
/// only by a handshake, so a connection made without one pays a pointer.
#[derive(Default)]
pub(crate) struct Opening {
    pub(crate) protocol: Option<Box<str>>,
    pub(crate) target: Option<Box<str>>,
    pub(crate) data: Option<Box<dyn Any + Send + Sync>>,
    /// The connection's place under the server's admission limits, given
    /// back when the connection drops.
    pub(crate) permit: Option<Permit>,
}

impl Opening {
    pub(crate) fn path(&self) -> Option<&str> {
        self.target.as_deref().map(|target| split_target(target).0)
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.target
            .as_deref()
            .and_then(|target| split_target(target).1)
    }
}

impl fmt::Debug for Opening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opening")
            .field("protocol", &self.protocol)
            .field("target", &self.target)
            .field("data", &self.data.as_ref().map(|_| ".."))
            .field("permit", &self.permit)
            .finish()
    }
}
