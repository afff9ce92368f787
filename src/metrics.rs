//! What the adapters report to the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`): the library installs no recorder, so with
//! none installed each report is one atomic load. An application installs
//! one (e.g. `metrics-exporter-prometheus`, as the `echo_server` example
//! does with `--metrics`).
//!
//! The names and labels are fixed; no label carries a connection, topic,
//! user or address. `role` is `server` or `client`; `direction` is `in` or
//! `out`.
//!
//! | name | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `websocket_connections_open` | gauge | `role` | connections an adapter is running |
//! | `websocket_handshakes_total` | counter | `role`, `outcome` | opening handshakes: `accepted`, `rejected` (a callback or admission limit refused), `invalid`, `timeout`, `io_error` |
//! | `websocket_messages_total` | counter | `role`, `direction`, `kind` | data messages, `kind` `text` or `binary` |
//! | `websocket_payload_bytes_total` | counter | `role`, `direction` | data message payload bytes (uncompressed) |
//! | `websocket_wire_bytes_total` | counter | `role`, `direction` | bytes on the transport after the handshake |
//! | `websocket_control_frames_total` | counter | `role`, `direction`, `kind` | `ping` and `pong` frames |
//! | `websocket_closes_total` | counter | `role`, `side`, `code` | Close frames sent (`side` `local`) and received (`remote`); `code` is the number for 1000-1015, else `3xxx`, `4xxx` or `other` |
//! | `websocket_protocol_errors_total` | counter | `role`, `error` | connections that failed, by [`ProtocolError::kind`](crate::ProtocolError::kind) (a transport that ended without a Close is not one) |
//! | `websocket_rate_limited_total` | counter | `role` | times a rate limit paused input or closed a connection |
//! | `websocket_ping_rtt_seconds` | histogram | `role` | round-trip times of timed Pings |
//! | `websocket_handoff_connections_total` | counter | | connections handed over to a successor process (`rt::handoff`) |
//! | `websocket_handoff_state_bytes_total` | counter | | bytes of connection state (snapshots and payloads) handed over |
//! | `websocket_handoff_seconds` | histogram | | each handoff, from the successor's arrival to its end |
//! | `websocket_handoff_inherited_total` | counter | `outcome` | connections taken over from a predecessor: `thawed`, or `refused` (closed with 1011) |
//!
//! Traffic counters are brought up to date when a connection waits for its
//! transport and when it ends, not per message. [`describe`] gives the
//! installed recorder each metric's help text and unit (an exporter's
//! `# HELP` lines).

use ::metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use crate::close::CloseCode;
use crate::conn::{Role, Stats, Traffic};
use crate::error::Error;

/// Describes every metric in the table above to the installed recorder:
/// its help text and unit, which an exporter prints as `# HELP` (and
/// `# TYPE`) lines. Call it once, after installing the recorder.
pub fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "websocket_connections_open",
        "WebSocket connections an adapter is running."
    );
    describe_counter!(
        "websocket_handshakes_total",
        "Opening handshakes by outcome: accepted, rejected, invalid, timeout, io_error."
    );
    describe_counter!(
        "websocket_messages_total",
        "Data messages by direction and kind (text, binary)."
    );
    describe_counter!(
        "websocket_payload_bytes_total",
        Unit::Bytes,
        "Data message payload bytes, uncompressed."
    );
    describe_counter!(
        "websocket_wire_bytes_total",
        Unit::Bytes,
        "Bytes on the transport after the opening handshake."
    );
    describe_counter!(
        "websocket_control_frames_total",
        "Ping and Pong frames by direction."
    );
    describe_counter!(
        "websocket_closes_total",
        "Close frames sent (side local) and received (side remote), by code."
    );
    describe_counter!(
        "websocket_protocol_errors_total",
        "Connections that failed, by error."
    );
    describe_counter!(
        "websocket_rate_limited_total",
        "Times a rate limit paused input or closed a connection."
    );
    describe_histogram!(
        "websocket_ping_rtt_seconds",
        Unit::Seconds,
        "Round-trip times of timed Pings."
    );
    describe_counter!(
        "websocket_handoff_connections_total",
        "Connections handed over to a successor process (rt::handoff)."
    );
    describe_counter!(
        "websocket_handoff_state_bytes_total",
        Unit::Bytes,
        "Bytes of connection state (snapshots and payloads) handed over."
    );
    describe_histogram!(
        "websocket_handoff_seconds",
        Unit::Seconds,
        "How long each handoff took, from the successor's arrival to its end."
    );
    describe_counter!(
        "websocket_handoff_inherited_total",
        "Connections taken over from a predecessor, by outcome: thawed, refused."
    );
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

/// Counts an opening handshake's outcome.
pub(crate) fn handshake<T>(role: Role, result: &Result<T, Error>) {
    let outcome = match result {
        Ok(_) => "accepted",
        Err(Error::Rejected(_)) => "rejected",
        Err(Error::Handshake(_)) => "invalid",
        Err(Error::HandshakeTimeout(_)) => "timeout",
        Err(_) => "io_error",
    };
    counter!("websocket_handshakes_total", "role" => role_label(role), "outcome" => outcome)
        .increment(1);
}

/// The label for a close code: its number for the codes RFC 6455 and its
/// registry define, else its range.
fn code_label(code: CloseCode) -> &'static str {
    const NAMED: [&str; 16] = [
        "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008", "1009", "1010",
        "1011", "1012", "1013", "1014", "1015",
    ];
    match code.0 {
        1000..=1015 => NAMED
            .get(usize::from(code.0 - 1000))
            .copied()
            .unwrap_or("other"),
        3000..=3999 => "3xxx",
        4000..=4999 => "4xxx",
        _ => "other",
    }
}

/// One direction's handles, made once per connection.
#[derive(Debug)]
struct Direction {
    text: Counter,
    binary: Counter,
    payload: Counter,
    wire: Counter,
    pings: Counter,
    pongs: Counter,
}

impl Direction {
    fn new(role: &'static str, direction: &'static str) -> Self {
        let kind = |kind: &'static str| counter!("websocket_messages_total", "role" => role, "direction" => direction, "kind" => kind);
        let control = |kind: &'static str| counter!("websocket_control_frames_total", "role" => role, "direction" => direction, "kind" => kind);
        Self {
            text: kind("text"),
            binary: kind("binary"),
            payload: counter!("websocket_payload_bytes_total", "role" => role, "direction" => direction),
            wire: counter!("websocket_wire_bytes_total", "role" => role, "direction" => direction),
            pings: control("ping"),
            pongs: control("pong"),
        }
    }

    /// Adds what `now` counts beyond `before`.
    fn add(&self, before: &Traffic, now: &Traffic) {
        let delta = |a: u64, b: u64| b.saturating_sub(a);
        self.text
            .increment(delta(before.text_messages, now.text_messages));
        self.binary
            .increment(delta(before.binary_messages, now.binary_messages));
        self.payload.increment(delta(
            before.text_bytes + before.binary_bytes,
            now.text_bytes + now.binary_bytes,
        ));
        self.wire
            .increment(delta(before.wire_bytes, now.wire_bytes));
        self.pings.increment(delta(before.pings, now.pings));
        self.pongs.increment(delta(before.pongs, now.pongs));
    }
}

/// A connection's reporter: the handles, and what was reported so far.
/// Dropping it takes the connection off the open gauge.
#[derive(Debug)]
pub(crate) struct ConnectionMetrics {
    role: &'static str,
    open: Gauge,
    received: Direction,
    sent: Direction,
    rate_limited: Counter,
    rtt: Histogram,
    /// The counters as last reported.
    reported: Option<Stats>,
    ended: bool,
}

impl ConnectionMetrics {
    /// A connection of `role` started.
    pub(crate) fn new(role: Role) -> Self {
        let role = role_label(role);
        let open = gauge!("websocket_connections_open", "role" => role);
        open.increment(1.0);
        Self {
            role,
            open,
            received: Direction::new(role, "in"),
            sent: Direction::new(role, "out"),
            rate_limited: counter!("websocket_rate_limited_total", "role" => role),
            rtt: histogram!("websocket_ping_rtt_seconds", "role" => role),
            reported: None,
            ended: false,
        }
    }

    /// Reports what the connection counted since the last report.
    pub(crate) fn update(&mut self, stats: Stats) {
        let zero = Traffic::default();
        let (received, sent, limited, samples) =
            self.reported.as_ref().map_or((&zero, &zero, 0, 0), |r| {
                (&r.received, &r.sent, r.rate_limited, r.rtt_samples)
            });
        self.received.add(received, &stats.received);
        self.sent.add(sent, &stats.sent);
        self.rate_limited
            .increment(stats.rate_limited.saturating_sub(limited));
        if stats.rtt_samples != samples
            && let Some(rtt) = stats.rtt
        {
            self.rtt.record(rtt.as_secs_f64());
        }
        self.reported = Some(stats);
    }

    /// The connection ended: the last traffic, its closes and its error,
    /// once.
    pub(crate) fn end(&mut self, stats: Stats) {
        if self.ended {
            return;
        }
        self.ended = true;
        let role = self.role;
        for (side, close) in [
            ("local", &stats.close_sent),
            ("remote", &stats.close_received),
        ] {
            if let Some(close) = close {
                counter!("websocket_closes_total", "role" => role, "side" => side, "code" => code_label(close.code))
                    .increment(1);
            }
        }
        if let Some(error) = stats.error.filter(|e| !e.is_peer_gone()) {
            counter!("websocket_protocol_errors_total", "role" => role, "error" => error.kind())
                .increment(1);
        }
        self.update(stats);
    }
}

impl Drop for ConnectionMetrics {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}
