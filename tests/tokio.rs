//! What only the tokio adapter has: `connect_async` over TCP, and the
//! write calls it makes on a tokio stream. The behaviour every async
//! adapter shares is tested once for all of them in `tests/adapters.rs`.
#![cfg(feature = "tokio")]

#[cfg(feature = "rustls")]
#[path = "support/tls.rs"]
mod tls;

use rfc6455::rt::tokio::{WebSocketStream, connect_async};
use rfc6455::{CloseCode, CloseFrame, Config, Message, ServerBuilder, State};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, duplex};
use tokio::net::TcpListener;

// connect_async: TCP, the handshake and an echo; close code and reason.
#[tokio::test]
async fn connect_async_echoes_and_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = WebSocketStream::accept(tcp, &ServerBuilder::new())
            .await
            .unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if !message.is_control() {
                ws.feed(message).await.unwrap();
            }
        }
        ws.connection().close_frame().cloned()
    });
    let (mut ws, _) = connect_async(&url).await.unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    // close() returns the peer's Close: the echo of our code (§5.5.1).
    let echoed = ws.close(CloseCode(4001), "bye now").await.unwrap();
    assert_eq!(echoed, Some(CloseFrame::new(CloseCode(4001), "")));
    assert_eq!(ws.connection().state(), State::Closed);
    assert_eq!(
        server.await.unwrap(),
        Some(CloseFrame::new(CloseCode(4001), "bye now"))
    );
}

/// A transport that records each write: which call, how many buffers and
/// how many bytes they held.
struct RecordingWrites {
    inner: DuplexStream,
    writes: Vec<(&'static str, usize, usize)>,
}

impl AsyncRead for RecordingWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for RecordingWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes.push(("write", 1, buf.len()));
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.writes.push(("vectored", bufs.len(), all.len()));
        std::pin::Pin::new(&mut self.inner).poll_write(cx, &all)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// Queued output that is one small buffer goes through poll_write (a socket's
// send, cheaper than writev); several buffers take the vectored call.
#[tokio::test]
async fn one_buffer_is_written_without_the_vectored_call() {
    let (a, mut peer) = duplex(1 << 20);
    let stream = RecordingWrites {
        inner: a,
        writes: Vec::new(),
    };
    let conn = rfc6455::Connection::new(rfc6455::Role::Server, Config::default()).unwrap();
    let mut ws = WebSocketStream::new(stream, conn);
    // A small frame is one buffer; a large payload is queued without a copy
    // behind its header: two buffers.
    ws.send(Message::binary(vec![1u8; 16])).await.unwrap();
    ws.send(Message::binary(vec![2u8; 60_000])).await.unwrap();
    assert_eq!(
        ws.get_ref().writes,
        [("write", 1, 18), ("vectored", 2, 60_004)]
    );
    let mut wire = vec![0u8; 2 + 16 + 4 + 60_000];
    peer.read_exact(&mut wire).await.unwrap();
    assert_eq!(&wire[..2], [0x82, 16]);
    assert_eq!(&wire[18..22], [0x82, 126, 0xea, 0x60]);
    assert!(wire[22..].iter().all(|&b| b == 2));
}

// One large buffer (the rest of a payload after a partial write) takes the
// vectored call too: tokio's poll_write would take the partial write for a
// full socket and wait for readiness, where writev writes again at once.
#[tokio::test]
async fn the_rest_of_a_large_payload_is_written_with_the_vectored_call() {
    const LEN: usize = 300_000;
    let (a, mut peer) = duplex(100_000);
    let stream = RecordingWrites {
        inner: a,
        writes: Vec::new(),
    };
    let conn = rfc6455::Connection::new(rfc6455::Role::Server, Config::default()).unwrap();
    let mut ws = WebSocketStream::new(stream, conn);
    let reader = tokio::spawn(async move {
        let mut wire = vec![0u8; 10 + LEN];
        peer.read_exact(&mut wire).await.unwrap();
        wire
    });
    ws.send(Message::binary(vec![3u8; LEN])).await.unwrap();
    let wire = reader.await.unwrap();
    assert_eq!(&wire[..2], [0x82, 127]);
    assert_eq!(
        u64::from_be_bytes(wire[2..10].try_into().unwrap()),
        LEN as u64
    );
    assert!(wire[10..].iter().all(|&b| b == 3));
    let writes = &ws.get_ref().writes;
    // The duplex takes at most 100 000 bytes at a time: several writes, the
    // later ones of the payload's rest alone. Each of 64 KiB or more is
    // vectored, one buffer or two; only a small rest goes through poll_write.
    assert!(
        writes.iter().filter(|&&(_, bufs, _)| bufs == 1).count() >= 2,
        "{writes:?}"
    );
    for &(call, _, bytes) in writes {
        assert_eq!(call == "vectored", bytes >= 64 * 1024, "{writes:?}");
    }
}

/// A TLS echo server for `localhost` with a fresh self-signed certificate;
/// its port and a client configuration that trusts the certificate.
#[cfg(feature = "rustls")]
async fn tls_echo_server() -> (u16, std::sync::Arc<rustls::ClientConfig>) {
    tls::serve(&[], |tls| async move {
        let mut ws = WebSocketStream::accept(tls, &ServerBuilder::new())
            .await
            .unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if !message.is_control() {
                ws.feed(message).await.unwrap();
            }
        }
    })
    .await
}

// wss:// through the rustls feature: connect_async does TCP, TLS (with the
// builder's roots) and the handshake.
#[cfg(feature = "rustls")]
#[tokio::test]
async fn connect_async_speaks_wss_with_the_builders_roots() {
    let (port, tls) = tls_echo_server().await;
    let client = rfc6455::ClientBuilder::new(&format!("wss://localhost:{port}/"))
        .unwrap()
        .tls_config(tls);
    let (mut ws, _) = connect_async(&client).await.unwrap();
    assert!(matches!(
        ws.get_ref(),
        rfc6455::rt::tokio::MaybeTlsStream::Rustls(_)
    ));
    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("over tls"));
    let echoed = ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(echoed.map(|f| f.code), Some(CloseCode::NORMAL));
}

// Without the certificate among its roots, the client refuses the server:
// an InvalidData I/O error that carries rustls's certificate error.
#[cfg(feature = "rustls")]
#[tokio::test]
async fn connect_async_refuses_an_unknown_certificate() {
    let (port, _) = tls_echo_server().await;
    let error = connect_async(format!("wss://localhost:{port}/"))
        .await
        .unwrap_err();
    let rfc6455::Error::Io(io) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    let inner = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(inner, Some(rustls::Error::InvalidCertificate(_))),
        "{io:?}"
    );
}

// Without the rustls feature, wss:// says TLS is needed instead of trying.
#[cfg(not(feature = "rustls"))]
#[tokio::test]
async fn connect_async_without_tls_needs_it() {
    let error = connect_async("wss://localhost:1/").await.unwrap_err();
    assert!(matches!(error, rfc6455::Error::TlsRequired), "{error:?}");
}

// A send that waits on a peer reading nothing, when the connection ends
// under it (the idle timeout, then the close timeout drops the output),
// reports that end: the message never left. It returned Ok before.
#[tokio::test(start_paused = true)]
async fn a_send_whose_output_is_dropped_is_an_error() {
    let (near, far) = duplex(1024);
    let config = Config::default()
        .idle_timeout(Some(std::time::Duration::from_secs(1)))
        .close_timeout(Some(std::time::Duration::from_secs(1)))
        .write_timeout(None);
    let server = ServerBuilder::new().config(config).unwrap();
    let client = tokio::spawn(async move {
        let request = rfc6455::ClientBuilder::new("ws://h/").unwrap();
        let (ws, _) = WebSocketStream::client(far, &request).await.unwrap();
        // Holds its end open and reads nothing more.
        std::future::pending::<()>().await;
        drop(ws);
    });
    let mut ws = WebSocketStream::accept(near, &server).await.unwrap();
    let error = ws
        .send(Message::binary(vec![0u8; 1 << 20]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            rfc6455::Error::Protocol(rfc6455::ProtocolError::IdleTimeout)
        ),
        "{error:?}"
    );
    client.abort();
}
