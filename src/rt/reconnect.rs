//! A client that comes back: [`Reconnect`] opens a connection, and after
//! each one ends decides from how it ended ([`Verdict`]) whether to open
//! another and after how long (a full-jitter [`Backoff`], or the server's
//! `Retry-After`), with the runtime's clock (so tests can pause it).
//!
//! ```no_run
//! # #[allow(dead_code)]
//! # async fn run() -> Result<(), rfc6455::Error> {
//! use rfc6455::Message;
//! use rfc6455::rt::reconnect::Reconnect;
//!
//! let mut reconnect = Reconnect::new("ws://127.0.0.1:9001/")?;
//! loop {
//!     // Waits as the backoff says, retries what is worth retrying, and
//!     // fails once a verdict says stop.
//!     let mut ws = reconnect.connect().await?;
//!     // Resume before anything else: resubscribe, send the last sequence seen.
//!     ws.send(Message::text("SUB prices")).await?;
//!     let error = loop {
//!         match ws.next().await {
//!             Some(Ok(message)) => println!("{message:?}"),
//!             Some(Err(error)) => break Some(error),
//!             None => break None,
//!         }
//!     };
//!     reconnect.ended(&ws, error.as_ref());
//! }
//! # }
//! ```
//!
//! Messages queued on a connection that died are not sent on the next one:
//! they die with their `WebSocketStream`, and [`Event::Disconnected`] says
//! how many bytes were left unwritten.

use std::fmt;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};

use crate::builder::{ClientBuilder, IntoClientBuilder};
use crate::close::CloseFrame;
use crate::conn::Connection;
use crate::error::Error;
use crate::reconnect::{Backoff, BackoffConfig, Verdict};
use crate::rt::tokio::{MaybeTlsStream, WebSocketStream};

/// What a [`Reconnect`] does, as it does it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An attempt starts after `delay` (the first has none).
    Connecting {
        /// Attempts since the last stable connection, this one included.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
    /// The handshake completed.
    Connected,
    /// An attempt failed and will be retried.
    Failed(&'a Error),
    /// A connection ended.
    Disconnected {
        /// The peer's Close (1006 if the transport ended without one).
        close: Option<&'a CloseFrame>,
        /// The error the connection ended with, if any.
        error: Option<&'a Error>,
        /// Bytes queued on it and never written.
        unsent: usize,
    },
}

type Classify = Box<dyn Fn(&Error) -> Verdict + Send + Sync>;
type OnEvent = Box<dyn FnMut(&Event<'_>) + Send>;

/// A reconnecting client. See the [module docs](self).
pub struct Reconnect {
    client: ClientBuilder,
    backoff: Backoff,
    rng: StdRng,
    classify: Classify,
    on_event: Option<OnEvent>,
    /// The wait before the next attempt: none before the first, else the
    /// backoff's or a server's `Retry-After`.
    wait: Option<Verdict>,
    /// Set when a verdict said stop: the next `connect` fails with it.
    stopped: Option<Error>,
}

impl fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnect")
            .field("client", &self.client)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Reconnect {
    /// A reconnecting client for `client` (a URL or a
    /// [`ClientBuilder`]), with the default
    /// [`BackoffConfig`] and [`Verdict::for_error`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a URL that is not a WebSocket URI.
    pub fn new(client: impl IntoClientBuilder) -> Result<Self, Error> {
        Ok(Self {
            client: client.into_client_builder()?,
            backoff: Backoff::new(BackoffConfig::default()),
            rng: StdRng::try_from_rng(&mut SysRng)
                .map_err(|_| Error::Config(crate::error::ConfigError::Entropy))?,
            classify: Box::new(Verdict::for_error),
            on_event: None,
            wait: None,
            stopped: None,
        })
    }

    /// Sets how the delays grow.
    #[must_use]
    pub fn backoff(mut self, config: BackoffConfig) -> Self {
        self.backoff = Backoff::new(config);
        self
    }

    /// Seeds the delays' randomness (for reproducible tests; the default
    /// seed comes from the operating system).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// Replaces [`Verdict::for_error`] for failed attempts and connections
    /// that ended with an error.
    #[must_use]
    pub fn classify(
        mut self,
        classify: impl Fn(&Error) -> Verdict + Send + Sync + 'static,
    ) -> Self {
        self.classify = Box::new(classify);
        self
    }

    /// Calls `on_event` with each [`Event`].
    #[must_use]
    pub fn on_event(mut self, on_event: impl FnMut(&Event<'_>) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(on_event));
        self
    }

    fn emit(&mut self, event: &Event<'_>) {
        if let Some(on_event) = &mut self.on_event {
            on_event(event);
        }
    }

    /// Opens the next connection: waits the delay the last ending asked
    /// for, then tries, and after a failure worth retrying waits and tries
    /// again.
    ///
    /// # Errors
    ///
    /// The error a verdict said [`Verdict::Stop`] to (a refusal such as 401,
    /// an untrusted certificate, a bad URL), or [`Error::ConnectionClosed`]
    /// when the last connection ended with a Close that says not to come
    /// back (see [`CloseCode::suggests_retry`](crate::CloseCode::suggests_retry)).
    pub async fn connect(&mut self) -> Result<WebSocketStream<MaybeTlsStream>, Error> {
        if let Some(error) = self.stopped.take() {
            return Err(error);
        }
        loop {
            let delay = match self.wait.take() {
                None => Duration::ZERO,
                Some(Verdict::RetryAfter(after)) => {
                    // The server's wait, and the backoff's count goes on.
                    let _ = self.backoff.next_delay(&mut self.rng);
                    after
                }
                Some(_) => self.backoff.next_delay(&mut self.rng),
            };
            let attempt = self.backoff.attempt().max(1);
            self.emit(&Event::Connecting { attempt, delay });
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match WebSocketStream::connect(&self.client).await {
                Ok((ws, _)) => {
                    self.backoff
                        .connected(tokio::time::Instant::now().into_std());
                    self.emit(&Event::Connected);
                    // Whatever ends it, the next attempt waits for the backoff.
                    self.wait = Some(Verdict::Retry);
                    return Ok(ws);
                }
                Err(error) => match (self.classify)(&error) {
                    Verdict::Stop => return Err(error),
                    verdict => {
                        self.emit(&Event::Failed(&error));
                        self.wait = Some(verdict);
                    }
                },
            }
        }
    }

    /// Tells it how a connection ended: `ws` after its stream ended (or
    /// before dropping it), with the error it ended with, if any. The next
    /// [`connect`](Self::connect) waits as the ending says, or fails if it
    /// says not to come back.
    pub fn ended(&mut self, ws: &WebSocketStream<MaybeTlsStream>, error: Option<&Error>) {
        self.ended_connection(ws.connection(), error);
    }

    /// [`ended`](Self::ended), from the connection itself (after
    /// `into_parts`, or for a split stream's reunited halves).
    pub fn ended_connection(&mut self, conn: &Connection, error: Option<&Error>) {
        self.backoff
            .disconnected(tokio::time::Instant::now().into_std());
        let close = conn.close_frame();
        self.emit(&Event::Disconnected {
            close,
            error,
            unsent: conn.stats().queued_output,
        });
        let verdict = match (error, close) {
            (Some(error), _) => (self.classify)(error),
            (None, Some(close)) => Verdict::for_close(close),
            // Dropped while open: the application ended it; come back.
            (None, None) => Verdict::Retry,
        };
        match verdict {
            Verdict::Stop => self.stopped = Some(Error::ConnectionClosed),
            verdict => self.wait = Some(verdict),
        }
    }
}
