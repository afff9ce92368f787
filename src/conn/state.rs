//! The connection's lifetime (RFC 6455 §7): the close handshake as a state
//! machine, and the facts beside it that decide what the connection still
//! does (the transport's end, a failure, a client's wait for the server to
//! close TCP).
//!
//! [`Lifecycle`] is the one place any of them changes, and the one place the
//! questions the adapters ask are answered: may a message be sent, is the
//! connection done reading, should the transport close.

use super::Role;
use super::snapshot::{Reader, SnapshotError, Writer};
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

/// Where the connection is in its close handshake; each phase carries what
/// it knows, so an illegal mix (a failure that still reads, a Close received
/// but not recorded) cannot be written down.
#[derive(Clone, Debug)]
enum Phase {
    /// Messages flow both ways.
    Open,
    /// This end's Close is queued; frames still arrive until the peer's.
    CloseSent,
    /// The peer's Close arrived; this end's answer is not queued yet.
    CloseReceived { peer: Box<CloseFrame> },
    /// The close handshake completed, or its wait ran out (`peer` is then
    /// 1006). Nothing more is sent or read. `wait_over`: a client no longer
    /// waits for the server to close the transport.
    Closed {
        peer: Box<CloseFrame>,
        wait_over: bool,
    },
    /// The connection failed: its Close is queued when its code can be sent,
    /// nothing more is read, and the transport closes once output is
    /// written. `ended`: the close handshake will not go on (a local-only
    /// code, the peer's Close already in, or the wait ran out).
    Failed {
        error: ProtocolError,
        peer: Option<Box<CloseFrame>>,
        ended: bool,
    },
}

/// Where the connection is, and everything that moves it: the close
/// handshake's [`Phase`], and the transport's end of input (a fact of its
/// own, which can come in any phase).
#[derive(Clone, Debug)]
pub(crate) struct Lifecycle {
    phase: Phase,
    /// The transport reported the end of input.
    eof: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            phase: Phase::Open,
            eof: false,
        }
    }
}

/// The Closes a phase carries are boxed: they come once, and every
/// connection carries the phase (`tests/scale.rs` bounds its size).
fn abnormal() -> Box<CloseFrame> {
    Box::new(CloseFrame::new(CloseCode::ABNORMAL, ""))
}

impl Lifecycle {
    // ---- Getters -----------------------------------------------------------

    pub(crate) fn state(&self) -> State {
        match self.phase {
            Phase::Open => State::Open,
            Phase::CloseSent | Phase::Failed { ended: false, .. } => State::Closing {
                initiated_by: Side::Local,
            },
            Phase::CloseReceived { .. } => State::Closing {
                initiated_by: Side::Remote,
            },
            Phase::Closed { .. } | Phase::Failed { ended: true, .. } => State::Closed,
        }
    }

    pub(crate) fn failure(&self) -> Option<ProtocolError> {
        match self.phase {
            Phase::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    pub(crate) fn peer_close(&self) -> Option<&CloseFrame> {
        match &self.phase {
            Phase::CloseReceived { peer } | Phase::Closed { peer, .. } => Some(peer),
            Phase::Failed { peer, .. } => peer.as_deref(),
            Phase::Open | Phase::CloseSent => None,
        }
    }

    pub(crate) fn eof(&self) -> bool {
        self.eof
    }

    // ---- Transitions -------------------------------------------------------

    /// This end queued a Close (a close, an echo, or a failure's).
    pub(crate) fn on_sent_close(&mut self) {
        self.phase = match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Open => Phase::CloseSent,
            Phase::CloseReceived { peer } => Phase::Closed {
                peer,
                wait_over: false,
            },
            phase => phase,
        };
    }

    /// The peer's Close arrived; `frame` is `None` for an empty one (kept
    /// as 1005). Returns whether this end must answer it (it has not sent
    /// its own Close).
    #[must_use]
    pub(crate) fn on_received_close(&mut self, frame: Option<&CloseFrame>) -> bool {
        let peer = Box::new(
            frame
                .cloned()
                .unwrap_or_else(|| CloseFrame::new(CloseCode::NO_STATUS_RECEIVED, "")),
        );
        match self.phase {
            Phase::Open => {
                self.phase = Phase::CloseReceived { peer };
                true
            }
            Phase::CloseSent => {
                self.phase = Phase::Closed {
                    peer,
                    wait_over: false,
                };
                false
            }
            // Nothing is read in the other phases.
            _ => false,
        }
    }

    /// The transport reported the end of input.
    pub(crate) fn on_eof(&mut self) {
        self.eof = true;
    }

    /// The connection failed. Returns whether to queue a Close for it: its
    /// code can be sent and none was. A local-only code (1006) ends the
    /// connection at once: there is no one to tell. The first failure sticks.
    #[must_use]
    pub(crate) fn on_failure(&mut self, error: ProtocolError) -> bool {
        let sendable = error.close_code().is_sendable();
        let local_only = || (!sendable).then(|| Box::new(CloseFrame::new(error.close_code(), "")));
        let (peer, answer, ended) = match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Open => (local_only(), sendable, !sendable),
            Phase::CloseSent => (local_only(), false, !sendable),
            Phase::CloseReceived { peer } => (Some(peer), sendable, true),
            Phase::Closed { peer, .. } => (Some(peer), false, true),
            failed @ Phase::Failed { .. } => {
                self.phase = failed;
                return false;
            }
        };
        self.phase = Phase::Failed { error, peer, ended };
        answer
    }

    /// The wait for the close handshake ran out: the handshake ends
    /// abnormally (1006) unless it completed, and a client stops waiting
    /// for the server to close the transport.
    pub(crate) fn on_close_wait_over(&mut self) {
        self.phase = match std::mem::replace(&mut self.phase, Phase::Open) {
            Phase::Open | Phase::CloseSent => Phase::Closed {
                peer: abnormal(),
                wait_over: true,
            },
            Phase::CloseReceived { peer } | Phase::Closed { peer, .. } => Phase::Closed {
                peer,
                wait_over: true,
            },
            Phase::Failed { error, peer, .. } => Phase::Failed {
                error,
                peer: peer.or_else(|| Some(abnormal())),
                ended: true,
            },
        };
    }

    // ---- Snapshots ---------------------------------------------------------

    /// Whether the connection is worth carrying on elsewhere: open, or its
    /// Close sent and the peer's awaited, with the transport still there.
    /// (A received Close is answered at once, so the phase after it is
    /// already the handshake's end.)
    pub(crate) fn may_freeze(&self) -> bool {
        !self.eof && matches!(self.phase, Phase::Open | Phase::CloseSent)
    }

    /// Writes the phase; only when [`may_freeze`](Self::may_freeze).
    pub(crate) fn freeze(&self, w: &mut Writer) {
        w.bool(matches!(self.phase, Phase::CloseSent));
    }

    pub(crate) fn thaw(r: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let phase = if r.bool("phase")? {
            Phase::CloseSent
        } else {
            Phase::Open
        };
        Ok(Self { phase, eof: false })
    }

    // ---- Questions ---------------------------------------------------------

    /// Whether messages may still be sent, and Pings answered: no Close was
    /// sent (nothing may follow it, §5.5.1) and nothing failed.
    pub(crate) fn may_send(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::CloseReceived { .. })
    }

    /// No more frames will be read: a Close arrived, the connection failed
    /// or closed.
    pub(crate) fn is_done_reading(&self) -> bool {
        !matches!(self.phase, Phase::Open | Phase::CloseSent)
    }

    /// Whether the keepalive and idle timers still run.
    pub(crate) fn times_input(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open | Phase::CloseSent | Phase::CloseReceived { .. }
        )
    }

    /// Whether to close the transport once `writing` (output waiting) is
    /// done: the connection failed, the transport ended with nothing more
    /// to read, or the close handshake is over. The server closes first
    /// (§7.1.1); a client waits for the server, up to the close timeout.
    /// Input that arrived before the end and waits (a rate limit paused
    /// it) is still the connection's to deliver, and it may still answer
    /// it: the transport stays (fuzz target `connection_ending`).
    pub(crate) fn should_close_transport(&self, role: Role, writing: bool) -> bool {
        if writing {
            return false;
        }
        (self.eof && self.is_done_reading())
            || match self.phase {
                Phase::Failed { .. } => true,
                Phase::Closed { wait_over, .. } => role == Role::Server || wait_over,
                _ => false,
            }
    }

    /// Whether the transport may be dropped: it should close, and the peer
    /// ended its side (so closing leaves no unread input to turn into a
    /// reset) or the close handshake's wait ran out (nothing more is waited
    /// for, whatever the peer does).
    pub(crate) fn is_finished(&self, role: Role, writing: bool) -> bool {
        let waited_out = match self.phase {
            Phase::Closed { wait_over, .. } => wait_over,
            Phase::Failed { ended, .. } => ended,
            _ => false,
        };
        self.should_close_transport(role, writing) && (self.eof || waited_out)
    }

    /// Whether more input is of use: until the transport ended or may be
    /// dropped. Once the connection is done reading, what arrives is read
    /// only to be discarded (the lingering close).
    pub(crate) fn wants_read(&self, role: Role, writing: bool) -> bool {
        !self.eof && !self.is_finished(role, writing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SERVER: Role = Role::Server;

    // RFC 6455 §7.1.2-§7.1.4: the close handshake completes when each side
    // has sent and received Close, in either order.
    #[test]
    fn both_orders_reach_closed() {
        let mut local = Lifecycle::default();
        local.on_sent_close();
        assert_eq!(
            local.state(),
            State::Closing {
                initiated_by: Side::Local
            }
        );
        assert!(!local.may_send() && !local.is_done_reading());
        assert!(!local.on_received_close(None));
        assert_eq!(local.state(), State::Closed);
        assert_eq!(
            local.peer_close().unwrap().code,
            CloseCode::NO_STATUS_RECEIVED
        );

        let mut remote = Lifecycle::default();
        let frame = CloseFrame::new(CloseCode::NORMAL, "bye");
        assert!(remote.on_received_close(Some(&frame)));
        assert_eq!(
            remote.state(),
            State::Closing {
                initiated_by: Side::Remote
            }
        );
        remote.on_sent_close();
        assert_eq!(remote.state(), State::Closed);
        assert_eq!(remote.peer_close(), Some(&frame));
        // The server closes the transport first; the client waits for it.
        assert!(remote.should_close_transport(Role::Server, false));
        assert!(!remote.should_close_transport(Role::Client, false));
        remote.on_close_wait_over();
        assert!(remote.should_close_transport(Role::Client, false));
        assert_eq!(
            remote.peer_close(),
            Some(&frame),
            "the wait keeps the peer's Close"
        );
    }

    #[test]
    fn a_local_only_failure_ends_at_once_and_a_sendable_one_closes() {
        let mut eof = Lifecycle::default();
        assert!(!eof.on_failure(ProtocolError::AbnormalClosure));
        assert_eq!(eof.state(), State::Closed);
        assert_eq!(eof.peer_close().unwrap().code, CloseCode::ABNORMAL);

        let mut bad = Lifecycle::default();
        assert!(bad.on_failure(ProtocolError::UnmaskedFrame));
        bad.on_sent_close();
        assert_eq!(
            bad.state(),
            State::Closing {
                initiated_by: Side::Local
            }
        );
        assert!(bad.is_done_reading() && !bad.may_send());
        assert!(bad.should_close_transport(SERVER, false));
        assert!(
            !bad.should_close_transport(SERVER, true),
            "output is written first"
        );
        bad.on_close_wait_over();
        assert_eq!(bad.state(), State::Closed);
        assert_eq!(bad.failure(), Some(ProtocolError::UnmaskedFrame));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Sent,
        Received(bool),
        Eof,
        Fail(bool),
        WaitOver,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Sent),
            any::<bool>().prop_map(Op::Received),
            Just(Op::Eof),
            any::<bool>().prop_map(Op::Fail),
            Just(Op::WaitOver),
        ]
    }

    proptest! {
        // Any sequence of events, applied as the connection applies them
        // (nothing is read once reading is done; a Close is queued when one
        // is asked for): the state never goes back, the first failure
        // sticks, nothing is sent after a Close, and a failure stops input.
        #[test]
        fn any_sequence_keeps_the_invariants(ops in proptest::collection::vec(op(), 0..12)) {
            let mut life = Lifecycle::default();
            let mut sent = false;
            let mut first_failure = None;
            let rank = |s: State| match s {
                State::Open => 0,
                State::Closing { .. } => 1,
                State::Closed => 2,
            };
            for op in ops {
                let before = rank(life.state());
                match op {
                    Op::Sent => {
                        life.on_sent_close();
                        sent = true;
                    }
                    Op::Received(empty) => {
                        if !life.is_done_reading() {
                            let frame = CloseFrame::new(CloseCode::NORMAL, "");
                            if life.on_received_close((!empty).then_some(&frame)) {
                                prop_assert!(!sent);
                                life.on_sent_close();
                                sent = true;
                            }
                            prop_assert!(life.peer_close().is_some());
                        }
                    }
                    Op::Eof => life.on_eof(),
                    Op::Fail(local_only) => {
                        let error = if local_only {
                            ProtocolError::AbnormalClosure
                        } else {
                            ProtocolError::BadClosePayload
                        };
                        first_failure.get_or_insert(error);
                        if life.on_failure(error) {
                            prop_assert!(!sent);
                            life.on_sent_close();
                            sent = true;
                        }
                    }
                    Op::WaitOver => life.on_close_wait_over(),
                }
                prop_assert!(rank(life.state()) >= before);
                prop_assert_eq!(life.failure(), first_failure);
                if sent || first_failure.is_some() {
                    prop_assert!(!life.may_send());
                }
                if first_failure.is_some() {
                    prop_assert!(life.is_done_reading() && !life.times_input());
                    prop_assert!(life.should_close_transport(SERVER, false));
                }
                if life.state() == State::Closed {
                    prop_assert!(life.is_done_reading() && !life.may_send());
                }
                prop_assert!(!life.should_close_transport(SERVER, true));
            }
        }
    }
}
