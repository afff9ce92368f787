//! What the opening handshake settled, kept with the connection: the
//! subprotocol, the request target, and a value the server's request
//! callback handed on to whoever runs the connection.

use std::any::Any;
use std::fmt;

use crate::admission::Permit;
use crate::handshake::split_target;

/// What a handshake settled, as it hands it to the connection.
#[derive(Default)]
pub(crate) struct Opening {
    pub(crate) protocol: Option<Box<str>>,
    pub(crate) data: Option<Box<dyn Any + Send + Sync>>,
    /// The connection's place under the server's admission limits, given
    /// back when the connection drops.
    pub(crate) permit: Option<Permit>,
}

/// The connection's record of its opening handshake: the target and the
/// subprotocol in one allocation, and what is rarely there (a value handed
/// on, an admission permit) boxed apart, so an idle connection pays a few
/// words and the target's bytes (`tests/scale.rs` bounds the idle heap).
pub(crate) struct Record {
    /// The request target, then the subprotocol.
    text: Box<str>,
    /// Where the subprotocol starts in `text`.
    protocol_at: Option<u32>,
    extras: Option<Box<Extras>>,
}

struct Extras {
    data: Option<Box<dyn Any + Send + Sync>>,
    /// Held for the connection's life; dropping it frees the place.
    _permit: Option<Permit>,
}

impl Record {
    pub(crate) fn new(opening: Opening, target: &str) -> Self {
        let mut text =
            String::with_capacity(target.len() + opening.protocol.as_deref().map_or(0, str::len));
        text.push_str(target);
        let protocol_at = opening.protocol.as_deref().and_then(|protocol| {
            let at = u32::try_from(text.len()).ok()?;
            text.push_str(protocol);
            Some(at)
        });
        let extras = (opening.data.is_some() || opening.permit.is_some()).then(|| {
            Box::new(Extras {
                data: opening.data,
                _permit: opening.permit,
            })
        });
        Self {
            text: text.into_boxed_str(),
            protocol_at,
            extras,
        }
    }

    pub(crate) fn target(&self) -> &str {
        let end = self.protocol_at.map_or(self.text.len(), |at| at as usize);
        self.text.get(..end).unwrap_or_default()
    }

    pub(crate) fn protocol(&self) -> Option<&str> {
        self.text.get(self.protocol_at? as usize..)
    }

    pub(crate) fn path(&self) -> &str {
        split_target(self.target()).0
    }

    pub(crate) fn query(&self) -> Option<&str> {
        split_target(self.target()).1
    }

    pub(crate) fn data_slot(&mut self) -> Option<&mut Option<Box<dyn Any + Send + Sync>>> {
        Some(&mut self.extras.as_deref_mut()?.data)
    }

    pub(crate) fn data(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.extras.as_deref()?.data.as_deref()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("target", &self.target())
            .field("protocol", &self.protocol())
            .field("data", &self.data().map(|_| ".."))
            .finish_non_exhaustive()
    }
}
