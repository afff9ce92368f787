//! Raw tokio I/O for the adapter tests: a hand-written upgrade, reading an
//! HTTP head byte by byte, and a stream that moves one byte per call.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// An upgrade request, written by hand, with the RFC's sample key.
pub const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Reads an HTTP head, through its blank line and not a byte further.
pub async fn read_head<S: AsyncRead + Unpin>(io: &mut S) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(io.read_u8().await.unwrap());
    }
    head
}

/// Upgrades `io` as a client with [`REQUEST`], by hand; panics unless the
/// answer is 101.
pub async fn raw_upgrade<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> S {
    io.write_all(REQUEST).await.unwrap();
    let head = read_head(&mut io).await;
    assert!(head.starts_with(b"HTTP/1.1 101 "), "upgrade refused");
    io
}

/// A stream that reads and writes at most one byte per call.
#[derive(Debug)]
pub struct OneByte<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for OneByte<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut one = [0u8; 1];
        let mut small = ReadBuf::new(&mut one[..buf.remaining().min(1)]);
        let poll = Pin::new(&mut self.0).poll_read(cx, &mut small);
        buf.put_slice(small.filled());
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OneByte<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(1);
        Pin::new(&mut self.0).poll_write(cx, &buf[..n])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(feature = "futures-io")]
impl<S: futures_io::AsyncRead + Unpin> futures_io::AsyncRead for OneByte<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(1);
        Pin::new(&mut self.0).poll_read(cx, &mut buf[..n])
    }
}

#[cfg(feature = "futures-io")]
impl<S: futures_io::AsyncWrite + Unpin> futures_io::AsyncWrite for OneByte<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(1);
        Pin::new(&mut self.0).poll_write(cx, &buf[..n])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// A server and a client stream upgraded over an in-memory pipe holding
/// `pipe` bytes each way, with default builders.
#[cfg(feature = "tokio")]
pub async fn ws_pair(
    pipe: usize,
) -> (
    rfc6455::rt::tokio::WebSocketStream<tokio::io::DuplexStream>,
    rfc6455::rt::tokio::WebSocketStream<tokio::io::DuplexStream>,
) {
    use rfc6455::rt::tokio::WebSocketStream;
    let (a, b) = tokio::io::duplex(pipe);
    let server = tokio::spawn(async move {
        WebSocketStream::accept(b, &rfc6455::ServerBuilder::new())
            .await
            .unwrap()
    });
    let client = rfc6455::ClientBuilder::new("ws://h/").unwrap();
    let (client, _) = WebSocketStream::client(a, &client).await.unwrap();
    (server.await.unwrap(), client)
}
