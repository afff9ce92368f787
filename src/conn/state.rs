//! The close handshake as a state machine (RFC 6455 §7).
//!
//! [`State::on`] is the one place the connection's state changes.

/// Which end of the connection did something.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// This endpoint.
    Local,
    /// The peer.
    Remote,
}

/// Where a connection is in its lifetime (RFC 6455 §4.1 OPEN, §7 CLOSING and CLOSED).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// One side has sent a Close frame and the other has not answered yet.
    /// `initiated_by: Local` means no more messages may be sent, but messages
    /// still arrive until the peer's Close; `Remote` is seen only for the
    /// moment before the echo is queued.
    Closing {
        /// Who sent the first Close frame (or failed the connection: `Local`).
        initiated_by: Side,
    },
    /// The close handshake finished, timed out, or the transport ended.
    Closed,
}

/// What moves the state forward.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// A Close frame was queued by this endpoint (a close, an echo or a failure).
    SentClose,
    /// A Close frame arrived from the peer.
    ReceivedClose,
    /// The transport ended, or the wait for the peer's Close timed out.
    Ended,
}

impl State {
    /// The state after `event`.
    pub(crate) fn on(self, event: Transition) -> Self {
        match (self, event) {
            (_, Transition::Ended) => Self::Closed,
            (Self::Open, Transition::SentClose) => Self::Closing {
                initiated_by: Side::Local,
            },
            (Self::Open, Transition::ReceivedClose) => Self::Closing {
                initiated_by: Side::Remote,
            },
            (
                Self::Closing {
                    initiated_by: Side::Local,
                },
                Transition::ReceivedClose,
            )
            | (
                Self::Closing {
                    initiated_by: Side::Remote,
                },
                Transition::SentClose,
            ) => Self::Closed,
            (state, _) => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6455 §7.1.2-§7.1.4: the close handshake completes when each side has sent and received Close.
    #[test]
    fn both_orders_reach_closed() {
        let local_first = State::Open.on(Transition::SentClose);
        assert_eq!(
            local_first,
            State::Closing {
                initiated_by: Side::Local
            }
        );
        assert_eq!(local_first.on(Transition::ReceivedClose), State::Closed);
        let remote_first = State::Open.on(Transition::ReceivedClose);
        assert_eq!(
            remote_first,
            State::Closing {
                initiated_by: Side::Remote
            }
        );
        assert_eq!(remote_first.on(Transition::SentClose), State::Closed);
        assert_eq!(State::Open.on(Transition::Ended), State::Closed);
        assert_eq!(State::Closed.on(Transition::SentClose), State::Closed);
    }
}
