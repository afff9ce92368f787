//! A wscat-like client: connects to a `ws://` or `wss://` URL, sends each
//! line of standard input as a text message, and prints what arrives.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:9001/
//! cargo run --example client -- wss://localhost:9443/ --ca /tmp/rfc6455-wss-cert.pem
//! cargo run --example client -- ws://127.0.0.1:9001/ --reconnect
//! ```
//!
//! Commands: `/ping [payload]` sends a Ping; `/close [CODE [REASON]]` starts
//! the close handshake. The program exits when the connection closes, or
//! with `--reconnect` (`rt::reconnect`) comes back after a dropped
//! connection, a restart or a `Retry-After`, with a random, growing delay,
//! until standard input ends, `/close` is typed, or the server says not to.

use std::sync::Arc;

use bytes::Bytes;
use rfc6455::rt::reconnect::Reconnect;
use rfc6455::rt::tokio::{MaybeTlsStream, WebSocketStream};
use rfc6455::{ClientBuilder, CloseCode, Error, Message};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: client URL [--ca CERT.pem] [--reconnect]";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or(USAGE)?;
    let (mut ca, mut reconnect) = (None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca = Some(args.next().ok_or(USAGE)?),
            "--reconnect" => reconnect = true,
            _ => return Err(USAGE.into()),
        }
    }
    let mut client = ClientBuilder::new(&url)?;
    if client.request().is_secure() {
        client = client.tls_config(Arc::new(tls_config(ca.as_deref())?));
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    if !reconnect {
        let (ws, accepted) = WebSocketStream::connect(&client).await?;
        eprintln!(
            "connected{} (/ping, /close CODE REASON)",
            accepted
                .protocol()
                .map(|p| format!(", subprotocol {p}"))
                .unwrap_or_default()
        );
        let (_, error, _) = run(ws, &mut lines).await?;
        return error.map_or(Ok(()), |e| Err(e.into()));
    }
    let mut reconnect = Reconnect::new(&client)?.on_event(|event| eprintln!("* {event:?}"));
    loop {
        let ws = reconnect.connect().await?;
        let (ws, error, quit) = run(ws, &mut lines).await?;
        if quit {
            return Ok(());
        }
        reconnect.ended(&ws, error.as_ref());
    }
}

/// Runs one connection until it ends: its stream back, the error it ended
/// with, and whether the user asked to quit.
async fn run(
    ws: WebSocketStream<MaybeTlsStream>,
    lines: &mut Lines<BufReader<Stdin>>,
) -> Result<(WebSocketStream<MaybeTlsStream>, Option<Error>, bool), BoxError> {
    let (mut writer, mut reader) = ws.split();
    let mut printer = tokio::spawn(async move {
        while let Some(message) = reader.next().await {
            match message {
                Ok(Message::Text(text)) => println!("< {text}"),
                Ok(Message::Binary(data)) => println!("< binary, {} bytes", data.len()),
                Ok(Message::Ping(data)) => println!("< ping {:?}", String::from_utf8_lossy(&data)),
                Ok(Message::Pong(data)) => println!("< pong {:?}", String::from_utf8_lossy(&data)),
                Ok(Message::Close(frame)) => match frame {
                    Some(frame) => println!("< close {} {:?}", frame.code, frame.reason.as_str()),
                    None => println!("< close"),
                },
                Ok(_) => {}
                Err(error) => {
                    eprintln!("error: {error}");
                    return (reader, Some(error));
                }
            }
        }
        (reader, None)
    });
    let mut quit = false;
    let (reader, error) = loop {
        tokio::select! {
            line = lines.next_line() => {
                let sent = match line? {
                    None => {
                        quit = true;
                        writer.close(CloseCode::NORMAL, "").await
                    }
                    Some(line) => {
                        if let Some(rest) = line.strip_prefix("/ping") {
                            writer.send(Message::Ping(Bytes::from(rest.trim().to_owned()))).await
                        } else if let Some(rest) = line.strip_prefix("/close") {
                            quit = true;
                            let mut parts = rest.trim().splitn(2, ' ');
                            let code = parts.next().filter(|c| !c.is_empty()).map_or(Ok(1000), str::parse)?;
                            writer.close(CloseCode(code), parts.next().unwrap_or("")).await
                        } else {
                            writer.send(Message::text(line)).await
                        }
                    }
                };
                // A write that fails means the connection is gone: the
                // printer sees how it ended.
                if let Err(error) = sent {
                    eprintln!("error: {error}");
                }
                if quit {
                    break (&mut printer).await?;
                }
            }
            ended = &mut printer => break ended?,
        }
    };
    let ws = reader
        .reunite(writer)
        .map_err(|_| "halves of different streams")?;
    Ok((ws, error, quit))
}

/// Public web roots, plus the given CA certificate (e.g. the one `wss_server` writes).
fn tls_config(ca: Option<&str>) -> Result<rustls::ClientConfig, BoxError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        for cert in CertificateDer::pem_file_iter(path)? {
            roots.add(cert?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
