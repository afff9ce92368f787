//! The connection's lifetime (RFC 6455 §7): the close handshake as a state
//! machine, and the facts beside it that decide what the connection still
//! does (the transport's end, a failure, a client's wait for the server to
//! close TCP).
//!
//! [`Lifecycle`] is the one place any of them changes, and the one place the
//! questions the adapters ask are answered: may a message be sent, is the
//! connection done reading, should the transport close.

use super::Role;
use crate::close::{CloseCode, CloseFrame};
use crate::error::ProtocolError;

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

/// Where the connection is, and everything that moves it.
#[derive(Clone, Debug)]
pub(crate) struct Lifecycle {
    state: State,
    /// A Close frame has been queued by this end.
    sent_close: bool,
    /// The peer's Close frame has arrived.
    received_close: bool,
    /// The transport reported the end of input.
    eof: bool,
    /// A client's wait for the server to close the transport ran out.
    close_wait_over: bool,
    /// The error the connection failed with; sticky.
    failure: Option<ProtocolError>,
    /// What the peer sent (1005 for an empty Close), or 1006 when the
    /// transport or the wait ended without one.
    peer_close: Option<CloseFrame>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            state: State::Open,
            sent_close: false,
            received_close: false,
            eof: false,
            close_wait_over: false,
            failure: None,
            peer_close: None,
        }
    }
}

impl Lifecycle {
    // ---- Getters -----------------------------------------------------------

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn failure(&self) -> Option<ProtocolError> {
        self.failure
    }

    pub(crate) fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_ref()
    }

    pub(crate) fn eof(&self) -> bool {
        self.eof
    }

    // ---- Transitions -------------------------------------------------------

    /// This end queued a Close (a close, an echo, or a failure's).
    pub(crate) fn on_sent_close(&mut self) {
        self.sent_close = true;
        self.state = self.state.on(Transition::SentClose);
    }

    /// The peer's Close arrived; `frame` is `None` for an empty one. Returns
    /// whether this end must answer it (it has not sent its own Close).
    #[must_use]
    pub(crate) fn on_received_close(&mut self, frame: Option<&CloseFrame>) -> bool {
        self.received_close = true;
        self.peer_close = Some(
            frame
                .cloned()
                .unwrap_or_else(|| CloseFrame::new(CloseCode::NO_STATUS_RECEIVED, "")),
        );
        self.state = self.state.on(Transition::ReceivedClose);
        !self.sent_close
    }

    /// The transport reported the end of input.
    pub(crate) fn on_eof(&mut self) {
        self.eof = true;
    }

    /// The connection failed. Returns whether to queue a Close for it: its
    /// code can be sent and none was. A local-only code (1006) ends the
    /// connection at once: there is no one to tell.
    #[must_use]
    pub(crate) fn on_failure(&mut self, error: ProtocolError) -> bool {
        self.failure = Some(error);
        let code = error.close_code();
        if code.is_sendable() {
            return !self.sent_close;
        }
        self.peer_close
            .get_or_insert_with(|| CloseFrame::new(code, ""));
        self.state = self.state.on(Transition::Ended);
        false
    }

    /// The wait for the close handshake ran out: the handshake ends
    /// abnormally (1006) unless it completed, and a client stops waiting
    /// for the server to close the transport.
    pub(crate) fn on_close_wait_over(&mut self) {
        if self.state != State::Closed {
            self.peer_close
                .get_or_insert_with(|| CloseFrame::new(CloseCode::ABNORMAL, ""));
            self.state = self.state.on(Transition::Ended);
        }
        self.close_wait_over = true;
    }

    // ---- Questions ---------------------------------------------------------

    /// Whether messages may still be sent: no Close was sent and nothing failed.
    pub(crate) fn may_send(&self) -> bool {
        !self.sent_close && self.failure.is_none()
    }

    /// Whether a Ping is still answered automatically: not once this end's
    /// Close is queued (nothing may follow it, §5.5.1).
    pub(crate) fn answers_pings(&self) -> bool {
        !self.sent_close
    }

    /// No more frames will be read: a Close arrived, the connection failed
    /// or closed.
    pub(crate) fn is_done_reading(&self) -> bool {
        self.failure.is_some() || self.received_close || self.state == State::Closed
    }

    /// Whether the keepalive and idle timers still run.
    pub(crate) fn times_input(&self) -> bool {
        self.failure.is_none() && self.state != State::Closed
    }

    /// Whether to close the transport once `writing` (output waiting) is
    /// done: the connection failed, the transport ended, or the close
    /// handshake is over. The server closes first (§7.1.1); a client waits
    /// for the server, up to the close timeout.
    pub(crate) fn should_close_transport(&self, role: Role, writing: bool) -> bool {
        if writing {
            return false;
        }
        self.failure.is_some()
            || self.eof
            || (self.state == State::Closed && (role == Role::Server || self.close_wait_over))
    }

    /// Whether more input is of use: not after the transport ended or once
    /// the transport should close.
    pub(crate) fn wants_read(&self, role: Role, writing: bool) -> bool {
        !self.eof && !self.should_close_transport(role, writing)
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
