//! The client role under the Autobahn TestSuite: connects to a fuzzing
//! server (`kosoku -m fuzzingserver`), runs every case by echoing each
//! message, then asks the server to write its reports.
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001
//! ```
//!
//! `autobahn/run.sh client` runs it; see autobahn/README.md.

use rfc6455::extensions::deflate::DeflateConfig;
use rfc6455::rt::tokio::connect_async;
use rfc6455::{ClientBuilder, Config, Error, Message};

const AGENT: &str = "rfc6455";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let count: u32 = {
        let (mut ws, _) = connect_async(client(&format!("{base}/getCaseCount"))?).await?;
        let Some(Ok(Message::Text(count))) = ws.next().await else {
            return Err("no case count".into());
        };
        count.as_str().trim().parse()?
    };
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(error) = echo(&url).await {
            // Many cases end in a protocol error on purpose; the report judges them.
            if !matches!(error, Error::Protocol(_) | Error::ConnectionClosed) {
                eprintln!("autobahn_client: case {case}: {error}");
            }
        }
    }
    // The server writes the reports and drops this connection without a Close.
    let url = format!("{base}/updateReports?agent={AGENT}");
    if let Ok((mut ws, _)) = connect_async(client(&url)?).await {
        while let Some(Ok(_)) = ws.next().await {}
    }
    Ok(())
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

async fn echo(url: &str) -> Result<(), Error> {
    let (mut ws, _) = connect_async(client(url)?).await?;
    while let Some(message) = ws.next().await {
        if let m @ (Message::Text(_) | Message::Binary(_)) = message? {
            ws.feed(m).await?;
        }
    }
    Ok(())
}
