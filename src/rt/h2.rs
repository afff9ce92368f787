//! WebSockets over HTTP/2 (RFC 8441), client role, on the `h2` crate
//! (feature `h2`): one HTTP/2 connection carries many WebSockets, each an
//! extended CONNECT stream.
//!
//! [`H2Client::open`] connects to a URL (TLS with ALPN `h2` for `wss://`,
//! h2c for `ws://`); [`H2Client::handshake`] starts HTTP/2 over a stream
//! of the caller's. Either drives the connection on a task of its own
//! and waits for the server's SETTINGS: a server that does not enable
//! extended CONNECT is a clear error there
//! ([`HandshakeError::NoExtendedConnect`]), not at the first WebSocket.
//! [`H2Client::connect`] then opens a WebSocket as a [`ClientBuilder`] says
//! (path, subprotocols, headers, [`Config`](crate::Config) with
//! permessage-deflate), as many as the server's stream limit allows.
//!
//! ```no_run
//! # #[allow(dead_code)]
//! # async fn run() -> Result<(), rfc6455::Error> {
//! use rfc6455::rt::h2::H2Client;
//! use rfc6455::{ClientBuilder, Message};
//!
//! let chat = ClientBuilder::new("wss://example.com/chat")?;
//! let h2 = H2Client::open(&chat).await?;
//! let (mut first, _) = h2.connect(&chat).await?;
//! let (mut second, _) = h2.connect(&chat).await?; // the same TCP connection
//! first.send(Message::text("one")).await?;
//! second.send(Message::text("two")).await?;
//! # Ok(()) }
//! ```
//!
//! The stream's end is the WebSocket's: the lingering close ends the
//! HTTP/2 stream (`END_STREAM`) and reads until the server ends its side;
//! a stream reset by the server is the transport's error.

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::Error;
use crate::builder::{ClientBuilder, IntoClientBuilder};
use crate::handshake::{Accepted, HandshakeError};
use crate::rt::tokio::WebSocketStream;

/// HTTP/2 flow-control windows: a stream may have this much in flight
/// before its reader takes it, the connection four times as much.
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 4 * STREAM_WINDOW;

/// An HTTP/2 connection that opens WebSockets (RFC 8441). Cheap to clone:
/// clones share the connection.
#[derive(Clone, Debug)]
pub struct H2Client {
    send: h2::client::SendRequest<Bytes>,
}

impl H2Client {
    /// Starts HTTP/2 over `io`, drives the connection on a spawned task
    /// (it ends when every clone of this client and every WebSocket on it
    /// is dropped), and waits for the server's SETTINGS: the answer to a
    /// PING follows them, so then extended CONNECT is known to be enabled
    /// or not.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if HTTP/2 fails to start (the server does not speak
    /// it, the stream ends), [`HandshakeError::NoExtendedConnect`] if the
    /// server's SETTINGS do not enable extended CONNECT.
    pub async fn handshake<T>(io: T) -> Result<Self, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake::<T, Bytes>(io)
            .await
            .map_err(h2_error)?;
        let mut ping = connection
            .ping_pong()
            .ok_or_else(|| io::Error::other("HTTP/2 PING already taken"))?;
        // The connection runs while the PING waits for its answer.
        let mut pong = std::pin::pin!(ping.ping(h2::Ping::opaque()));
        poll_fn(|cx| {
            if let Poll::Ready(pong) = pong.as_mut().poll(cx) {
                return Poll::Ready(pong.map(drop).map_err(h2_error));
            }
            match ready!(Pin::new(&mut connection).poll(cx)) {
                Ok(()) => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Err(error) => Poll::Ready(Err(h2_error(error))),
            }
        })
        .await?;
        tokio::spawn(async move {
            // Its error reaches every stream on it.
            let _ = connection.await;
        });
        if !send.is_extended_connect_protocol_enabled() {
            return Err(HandshakeError::NoExtendedConnect.into());
        }
        Ok(Self { send })
    }

    /// Opens an HTTP/2 connection to `client`'s host and port (a URL or a
    /// [`ClientBuilder`]) and [`handshake`](Self::handshake)s: over TLS
    /// offering only `h2` by ALPN for `wss://` (feature `rustls`, with the
    /// builder's [`tls_config`](ClientBuilder::tls_config) or the
    /// default), over plain TCP with prior knowledge (h2c) for `ws://`.
    ///
    /// # Errors
    ///
    /// As [`handshake`](Self::handshake); [`HandshakeError::NoHttp2`] if
    /// TLS did not agree on `h2`, [`Error::TlsRequired`] for `wss://`
    /// without the `rustls` feature, [`Error::Config`] for a bad URL,
    /// [`Error::Io`] from connecting or from TLS.
    pub async fn open(client: impl IntoClientBuilder) -> Result<Self, Error> {
        let client = client.into_client_builder()?;
        let tcp = TcpStream::connect(crate::transport::connect_target(&client)?).await?;
        tcp.set_nodelay(true)?;
        if client.request().is_secure() {
            Self::handshake(tls_h2(tcp, &client).await?).await
        } else {
            Self::handshake(tcp).await
        }
    }

    /// Opens a WebSocket on a new stream, as `client` says: the URL's
    /// authority and path, subprotocols, headers, and its
    /// [`Config`](crate::Config) (permessage-deflate offered as over
    /// HTTP/1.1), within its handshake timeout. The URL's scheme does not
    /// choose TLS here: the stream given to
    /// [`handshake`](Self::handshake) is what it is.
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] for a refusal or an answer that does not match
    /// the offer, [`Error::HandshakeTimeout`], [`Error::Io`] when the
    /// HTTP/2 connection fails.
    pub async fn connect(
        &self,
        client: &ClientBuilder,
    ) -> Result<(WebSocketStream<H2Stream>, Accepted), Error> {
        let (opening, request) = client.extended_connect()?;
        let open = async {
            let mut send = self.send.clone().ready().await.map_err(h2_error)?;
            let mut request = request;
            request
                .extensions_mut()
                .insert(h2::ext::Protocol::from_static("websocket"));
            let (response, send_stream) = send.send_request(request, false).map_err(h2_error)?;
            let response = response.await.map_err(h2_error)?;
            Ok::<_, Error>((response, send_stream))
        };
        let limit = client.request().limits().timeout;
        let (response, send) = match limit {
            Some(limit) => tokio::time::timeout(limit, open)
                .await
                .map_err(|_| Error::HandshakeTimeout(limit))??,
            None => open.await?,
        };
        let (parts, recv) = response.into_parts();
        let (conn, accepted) = opening.finish(&http::Response::from_parts(parts, ()))?;
        let stream = H2Stream {
            send,
            recv,
            unread: Bytes::new(),
            ended: false,
        };
        Ok((WebSocketStream::new(stream, conn), accepted))
    }
}

/// TLS over `tcp` offering only `h2`, which the server must choose.
#[cfg(feature = "rustls")]
async fn tls_h2(
    tcp: TcpStream,
    client: &ClientBuilder,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let (config, name) = crate::tls::for_client(client)?;
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    // A server that speaks ALPN but not `h2` refuses with an alert; one
    // without ALPN chooses nothing.
    let no_h2 = |error: &io::Error| {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|error| {
                *error
                    == rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
            })
    };
    let stream = match connector.connect(name, tcp).await {
        Ok(stream) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => stream,
        Ok(_) => return Err(HandshakeError::NoHttp2.into()),
        Err(error) if no_h2(&error) => return Err(HandshakeError::NoHttp2.into()),
        Err(error) => return Err(error.into()),
    };
    Ok(stream)
}

#[cfg(not(feature = "rustls"))]
async fn tls_h2(_: TcpStream, _: &ClientBuilder) -> Result<TcpStream, Error> {
    Err(Error::TlsRequired)
}

/// One extended CONNECT stream as a byte stream: what a WebSocket runs on.
#[derive(Debug)]
pub struct H2Stream {
    send: h2::SendStream<Bytes>,
    recv: h2::RecvStream,
    /// Received and not yet read.
    unread: Bytes,
    /// This end sent `END_STREAM`.
    ended: bool,
}

impl AsyncRead for H2Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.unread.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // The reader takes all of it: the window reopens now.
                    this.recv
                        .flow_control()
                        .release_capacity(data.len())
                        .map_err(h2_error)?;
                    this.unread = data;
                }
                Some(Err(error)) => return Poll::Ready(Err(h2_error(error))),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl H2Stream {
    /// Waits for send capacity for up to `want` bytes; how much there is.
    fn poll_capacity(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        if let Poll::Ready(reset) = self.send.poll_reset(cx) {
            let error = match reset {
                Ok(reason) => h2_error(reason.into()),
                Err(error) => h2_error(error),
            };
            return Poll::Ready(Err(error));
        }
        self.send.reserve_capacity(want);
        loop {
            let capacity = self.send.capacity();
            if capacity > 0 {
                return Poll::Ready(Ok(capacity.min(want)));
            }
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(h2_error(error))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(self.poll_capacity(cx, buf.len()))?;
        let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
        self.send.send_data(data, false).map_err(h2_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(self.poll_capacity(cx, total))?;
        // One DATA frame's worth, gathered: h2 takes owned bytes.
        let mut data = BytesMut::with_capacity(n);
        for slice in bufs {
            let take = (n - data.len()).min(slice.len());
            data.extend_from_slice(slice.get(..take).unwrap_or_default());
            if data.len() == n {
                break;
            }
        }
        self.send
            .send_data(data.freeze(), false)
            .map_err(h2_error)?;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection's task writes what the stream queued.
        Poll::Ready(Ok(()))
    }

    /// Ends this side of the stream (`END_STREAM`): the WebSocket's
    /// half-close.
    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.ended {
            self.ended = true;
            self.send.send_data(Bytes::new(), true).map_err(h2_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// An `h2` error as the transport's I/O error.
fn h2_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        error
            .into_io()
            .unwrap_or_else(|| io::ErrorKind::Other.into())
    } else {
        io::Error::other(error)
    }
}
