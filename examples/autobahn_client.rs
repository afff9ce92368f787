//! The client role under the Autobahn TestSuite: connects to a fuzzing
//! server (`kosoku -m fuzzingserver`), runs every case by echoing each
//! message, then asks the server to write its reports.
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001
//! ```
//!
//! With `--h2` (feature `h2`) every case's WebSocket is a stream of one
//! HTTP/2 connection (RFC 8441, h2c): `autobahn/run.sh h2` runs it against
//! the fuzzing server through a bridge that turns each extended CONNECT
//! into an HTTP/1.1 upgrade.
//!
//! `autobahn/run.sh client` runs it; see autobahn/README.md.

use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::rt::tokio::{WebSocketStream, connect_async};
use rfc6455::{ClientBuilder, Config, Error, Message};
use tokio::io::{AsyncRead, AsyncWrite};

const AGENT: &str = "rfc6455";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let h2 = args.next_if(|arg| arg == "--h2").is_some();
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let transport = Transport::new(h2, &base).await?;
    let count: u32 = {
        let url = format!("{base}/getCaseCount");
        let Some(Ok(Message::Text(count))) = transport.first_message(&url).await? else {
            return Err("no case count".into());
        };
        count.as_str().trim().parse()?
    };
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(error) = transport.echo(&url).await {
            // Many cases end in a protocol error on purpose; the report judges them.
            if !matches!(error, Error::Protocol(_) | Error::ConnectionClosed) {
                eprintln!("autobahn_client: case {case}: {error}");
            }
        }
    }
    // The server writes the reports and drops this connection without a Close.
    let url = format!("{base}/updateReports?agent={AGENT}");
    let _ = transport.echo(&url).await;
    Ok(())
}

/// Where each case's WebSocket runs: its own TCP connection, or a stream
/// of one HTTP/2 connection.
enum Transport {
    Tcp,
    #[cfg(feature = "h2")]
    H2(rfc6455::rt::h2::H2Client),
}

impl Transport {
    async fn new(h2: bool, base: &str) -> Result<Self, Error> {
        if !h2 {
            return Ok(Self::Tcp);
        }
        #[cfg(feature = "h2")]
        return Ok(Self::H2(
            rfc6455::rt::h2::H2Client::open(client(base)?).await?,
        ));
        #[cfg(not(feature = "h2"))]
        {
            let _ = base;
            Err(std::io::Error::other("--h2 needs the h2 feature").into())
        }
    }

    /// Opens a WebSocket to `url` and reads its first message.
    async fn first_message(&self, url: &str) -> Result<Option<Result<Message, Error>>, Error> {
        match self {
            Self::Tcp => Ok(connect_async(client(url)?).await?.0.next().await),
            #[cfg(feature = "h2")]
            Self::H2(h2) => Ok(h2.connect(&client(url)?).await?.0.next().await),
        }
    }

    /// Opens a WebSocket to `url` and echoes every data message on it.
    async fn echo(&self, url: &str) -> Result<(), Error> {
        match self {
            Self::Tcp => echo(connect_async(client(url)?).await?.0).await,
            #[cfg(feature = "h2")]
            Self::H2(h2) => echo(h2.connect(&client(url)?).await?.0).await,
        }
    }
}

/// permessage-deflate offered with `client_no_context_takeover` and a bare
/// `client_max_window_bits` (no window limits asked for), which every case
/// of section 13 needs to run: its answers grant windows up to 15 bits.
/// An echo answers in kind, so every message is compressed (threshold 0).
fn config() -> Config {
    let deflate = DeflateConfig::default()
        .client_no_context_takeover(true)
        .client_max_window_bits(15)
        .server_max_window_bits(15)
        .threshold(0);
    Config::default().deflate(Some(deflate))
}

/// A client for `url` with [`config`].
fn client(url: &str) -> Result<ClientBuilder, Error> {
    Ok(ClientBuilder::new(url)?.config(config())?)
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) -> Result<(), Error> {
    while let Some(message) = ws.next().await {
        if let m @ (Message::Text(_) | Message::Binary(_)) = message? {
            ws.feed(m).await?;
        }
    }
    Ok(())
}
