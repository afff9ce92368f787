//! One set of async adapter tests for every runtime: a `Harness` names the
//! runtime (executor, timer, in-memory pipe, TCP) and the adapter on it, and
//! `tests/adapters.rs` runs the same bodies on each.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rfc6455::handshake::{AcceptOptions, Rejection, RequestView};
use rfc6455::rt::{Runtime, WebSocketStream};
use rfc6455::{ClientBuilder, Config, Error, ServerBuilder};

use super::io::OneByte;

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type BoxFuture<T> = Fut<'static, T>;

/// A runtime, the adapter for it, and the byte streams the tests use.
pub trait Harness: Sized + 'static {
    /// The adapter's runtime marker.
    type R: Runtime<Self::Mem> + Runtime<Self::Tcp> + Runtime<OneByte<Self::Mem>> + 'static;
    /// One end of an in-memory pipe.
    type Mem: Unpin + Send + std::fmt::Debug + 'static;
    /// A connected TCP stream.
    type Tcp: Unpin + Send + std::fmt::Debug + 'static;
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;

    /// Durations in the timer tests are divided by this: 1 where the
    /// clock is paused (virtual time), more where it is real.
    const TIME_DIVISOR: u32;

    /// Runs a test body to its end.
    fn run(body: impl Future<Output = ()> + Send + 'static);
    /// Runs a timer test body (on a paused clock where the runtime has one).
    fn run_timed(body: impl Future<Output = ()> + Send + 'static);
    /// Spawns a task; the future is its result.
    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> BoxFuture<T>;
    /// Sleeps by the runtime's clock.
    fn sleep(duration: Duration) -> BoxFuture<()>;
    /// The runtime's clock, as the adapter reads it.
    fn now() -> std::time::Instant;

    /// An in-memory pipe holding `capacity` bytes each way.
    fn pipe(capacity: usize) -> (Self::Mem, Self::Mem);
    /// Writes all of `bytes`.
    fn write_all<'a>(io: &'a mut Self::Mem, bytes: &'a [u8]) -> Fut<'a, ()>;
    /// Reads once.
    fn read<'a>(io: &'a mut Self::Mem, buf: &'a mut [u8]) -> Fut<'a, usize>;
    /// Reads to the end.
    fn read_to_end(io: &mut Self::Mem) -> Fut<'_, Vec<u8>>;
    /// Shuts the write side down.
    fn shutdown(io: &mut Self::Mem) -> Fut<'_, ()>;

    /// A listener on 127.0.0.1 (a backlog of at least 2048) and its `ws://` URL.
    fn listen() -> BoxFuture<(Self::Listener, String)>;
    /// The next connection.
    fn accept_tcp(listener: &Self::Listener) -> Fut<'_, Self::Tcp>;
    /// Connects to `url`'s host and port.
    fn connect_tcp(url: &str) -> BoxFuture<Self::Tcp>;
}

/// The server handshake, as every adapter runs it.
pub async fn accept<H: Harness, S>(
    stream: S,
    config: Config,
    callback: impl Fn(&RequestView<'_>) -> Result<AcceptOptions, Rejection>,
) -> Result<WebSocketStream<S, H::R>, Error>
where
    H::R: Runtime<S>,
{
    let server = ServerBuilder::new()
        .config(config)
        .unwrap()
        .on_request(callback);
    WebSocketStream::accept(stream, &server).await
}

/// The client handshake, as every adapter runs it.
pub async fn client<H: Harness, S>(
    stream: S,
    url: &str,
    config: Config,
) -> Result<WebSocketStream<S, H::R>, Error>
where
    H::R: Runtime<S>,
{
    let client = ClientBuilder::new(url).unwrap().config(config).unwrap();
    WebSocketStream::client(stream, &client)
        .await
        .map(|(ws, _)| ws)
}

/// Waits for `future` at most `limit` by the harness's clock.
pub async fn timeout<H: Harness, T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let future = std::pin::pin!(future);
    let mut sleep = H::sleep(limit);
    let mut future = future;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(value));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

// ---- tokio, with the tokio adapter ----------------------------------------

/// tokio's runtime and TCP (a dev-dependency: the futures-io harness uses them too).
pub mod tokio_rt {
    use super::*;
    #[cfg(feature = "tokio")]
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::net::{TcpListener, TcpStream};

    /// tokio, the tokio adapter, tokio's duplex pipe, a paused clock for timer tests.
    #[cfg(feature = "tokio")]
    pub struct TokioAdapter;

    pub fn runtime(paused: bool) -> tokio::runtime::Runtime {
        if paused {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        }
    }

    pub fn spawn<T: Send + 'static>(
        task: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<T> {
        let handle = tokio::spawn(task);
        Box::pin(async move { handle.await.unwrap() })
    }

    pub fn listen() -> BoxFuture<(TcpListener, String)> {
        Box::pin(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(2048).unwrap();
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            (listener, url)
        })
    }

    pub fn connect(url: &str) -> BoxFuture<TcpStream> {
        let request = rfc6455::handshake::ClientRequest::new(url).unwrap();
        let addr = format!("{}:{}", request.host(), request.port());
        Box::pin(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tcp
        })
    }

    #[cfg(feature = "tokio")]
    impl Harness for TokioAdapter {
        type R = rfc6455::rt::tokio::Tokio;
        type Mem = DuplexStream;
        type Tcp = TcpStream;
        type Listener = TcpListener;
        const TIME_DIVISOR: u32 = 1;

        fn run(body: impl Future<Output = ()> + Send + 'static) {
            runtime(false).block_on(body);
        }

        fn run_timed(body: impl Future<Output = ()> + Send + 'static) {
            runtime(true).block_on(body);
        }

        fn spawn<T: Send + 'static>(
            task: impl Future<Output = T> + Send + 'static,
        ) -> BoxFuture<T> {
            spawn(task)
        }

        fn sleep(duration: Duration) -> BoxFuture<()> {
            Box::pin(tokio::time::sleep(duration))
        }

        fn now() -> std::time::Instant {
            tokio::time::Instant::now().into_std()
        }

        fn pipe(capacity: usize) -> (DuplexStream, DuplexStream) {
            tokio::io::duplex(capacity)
        }

        fn write_all<'a>(io: &'a mut DuplexStream, bytes: &'a [u8]) -> Fut<'a, ()> {
            Box::pin(async move { io.write_all(bytes).await.unwrap() })
        }

        fn read<'a>(io: &'a mut DuplexStream, buf: &'a mut [u8]) -> Fut<'a, usize> {
            Box::pin(async move { io.read(buf).await.unwrap() })
        }

        fn read_to_end(io: &mut DuplexStream) -> Fut<'_, Vec<u8>> {
            Box::pin(async move {
                let mut wire = Vec::new();
                io.read_to_end(&mut wire).await.unwrap();
                wire
            })
        }

        fn shutdown(io: &mut DuplexStream) -> Fut<'_, ()> {
            Box::pin(async move { io.shutdown().await.unwrap() })
        }

        fn listen() -> BoxFuture<(TcpListener, String)> {
            listen()
        }

        fn accept_tcp(listener: &TcpListener) -> Fut<'_, TcpStream> {
            Box::pin(async move { listener.accept().await.unwrap().0 })
        }

        fn connect_tcp(url: &str) -> BoxFuture<TcpStream> {
            connect(url)
        }
    }
}

// ---- futures-io: on smol, and on tokio through tokio-util's compat ---------

#[cfg(feature = "futures-io")]
pub mod futures_rt {
    use super::tokio_rt;
    use super::*;
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::io::DuplexStream;
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

    /// The futures-io adapter's timer runs on the system clock: timer
    /// tests run at a fiftieth of the paused-clock durations.
    const DIVISOR: u32 = 50;

    /// What differs between the executors the futures-io adapter is tested on.
    pub trait Executor: 'static {
        type Tcp: futures_io::AsyncRead
            + futures_io::AsyncWrite
            + Unpin
            + Send
            + std::fmt::Debug
            + 'static;
        type Listener: Send + Sync + 'static;
        fn run(body: impl Future<Output = ()> + Send + 'static);
        fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static)
        -> BoxFuture<T>;
        fn sleep(duration: Duration) -> BoxFuture<()>;
        fn listen() -> BoxFuture<(Self::Listener, String)>;
        fn accept_tcp(listener: &Self::Listener) -> Fut<'_, Self::Tcp>;
        fn connect_tcp(url: &str) -> BoxFuture<Self::Tcp>;
    }

    /// The futures-io adapter on executor `X`, over tokio's duplex pipe
    /// (runtime-free memory) seen through futures-io, on the system clock.
    pub struct FuturesIoOn<X>(std::marker::PhantomData<X>);

    impl<X: Executor> Harness for FuturesIoOn<X> {
        type R = rfc6455::rt::futures_io::FuturesIo;
        type Mem = Compat<DuplexStream>;
        type Tcp = X::Tcp;
        type Listener = X::Listener;
        const TIME_DIVISOR: u32 = DIVISOR;

        fn run(body: impl Future<Output = ()> + Send + 'static) {
            X::run(body);
        }

        fn run_timed(body: impl Future<Output = ()> + Send + 'static) {
            X::run(body);
        }

        fn spawn<T: Send + 'static>(
            task: impl Future<Output = T> + Send + 'static,
        ) -> BoxFuture<T> {
            X::spawn(task)
        }

        fn sleep(duration: Duration) -> BoxFuture<()> {
            X::sleep(duration)
        }

        fn now() -> std::time::Instant {
            std::time::Instant::now()
        }

        fn pipe(capacity: usize) -> (Self::Mem, Self::Mem) {
            let (a, b) = tokio::io::duplex(capacity);
            (a.compat(), b.compat())
        }

        fn write_all<'a>(io: &'a mut Self::Mem, bytes: &'a [u8]) -> Fut<'a, ()> {
            Box::pin(async move { io.write_all(bytes).await.unwrap() })
        }

        fn read<'a>(io: &'a mut Self::Mem, buf: &'a mut [u8]) -> Fut<'a, usize> {
            Box::pin(async move { io.read(buf).await.unwrap() })
        }

        fn read_to_end(io: &mut Self::Mem) -> Fut<'_, Vec<u8>> {
            Box::pin(async move {
                let mut wire = Vec::new();
                io.read_to_end(&mut wire).await.unwrap();
                wire
            })
        }

        fn shutdown(io: &mut Self::Mem) -> Fut<'_, ()> {
            Box::pin(async move { io.close().await.unwrap() })
        }

        fn listen() -> BoxFuture<(Self::Listener, String)> {
            X::listen()
        }

        fn accept_tcp(listener: &Self::Listener) -> Fut<'_, Self::Tcp> {
            X::accept_tcp(listener)
        }

        fn connect_tcp(url: &str) -> BoxFuture<Self::Tcp> {
            X::connect_tcp(url)
        }
    }

    /// smol's executor and TCP.
    pub struct Smol;

    impl Executor for Smol {
        type Tcp = smol::net::TcpStream;
        type Listener = smol::net::TcpListener;

        fn run(body: impl Future<Output = ()> + Send + 'static) {
            smol::block_on(smol::spawn(body));
        }

        fn spawn<T: Send + 'static>(
            task: impl Future<Output = T> + Send + 'static,
        ) -> BoxFuture<T> {
            // Detached, as a tokio task is: dropping the handle does not cancel it.
            let (result, receive) = smol::channel::bounded(1);
            smol::spawn(async move {
                let _ = result.send(task.await).await;
            })
            .detach();
            Box::pin(async move { receive.recv().await.expect("the task panicked") })
        }

        fn sleep(duration: Duration) -> BoxFuture<()> {
            Box::pin(async move {
                smol::Timer::after(duration).await;
            })
        }

        fn listen() -> BoxFuture<(Self::Listener, String)> {
            Box::pin(async {
                // smol's listener asks the kernel for its default backlog
                // (4096 on Linux), more than the tests open at once.
                let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("ws://{}/", listener.local_addr().unwrap());
                (listener, url)
            })
        }

        fn accept_tcp(listener: &Self::Listener) -> Fut<'_, Self::Tcp> {
            Box::pin(async move { listener.accept().await.unwrap().0 })
        }

        fn connect_tcp(url: &str) -> BoxFuture<Self::Tcp> {
            let request = rfc6455::handshake::ClientRequest::new(url).unwrap();
            let addr = format!("{}:{}", request.host(), request.port());
            Box::pin(async move {
                let tcp = smol::net::TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                tcp
            })
        }
    }

    /// tokio's executor and TCP through `tokio_util::compat`.
    pub struct TokioCompat;

    impl Executor for TokioCompat {
        type Tcp = Compat<tokio::net::TcpStream>;
        type Listener = tokio::net::TcpListener;

        fn run(body: impl Future<Output = ()> + Send + 'static) {
            tokio_rt::runtime(false).block_on(body);
        }

        fn spawn<T: Send + 'static>(
            task: impl Future<Output = T> + Send + 'static,
        ) -> BoxFuture<T> {
            tokio_rt::spawn(task)
        }

        fn sleep(duration: Duration) -> BoxFuture<()> {
            Box::pin(tokio::time::sleep(duration))
        }

        fn listen() -> BoxFuture<(Self::Listener, String)> {
            tokio_rt::listen()
        }

        fn accept_tcp(listener: &Self::Listener) -> Fut<'_, Self::Tcp> {
            Box::pin(async move { listener.accept().await.unwrap().0.compat() })
        }

        fn connect_tcp(url: &str) -> BoxFuture<Self::Tcp> {
            let connect = tokio_rt::connect(url);
            Box::pin(async move { connect.await.compat() })
        }
    }

    /// The futures-io adapter on smol.
    pub type SmolAdapter = FuturesIoOn<Smol>;
    /// The futures-io adapter on tokio through `tokio_util::compat`.
    pub type TokioCompatAdapter = FuturesIoOn<TokioCompat>;
}
