//! A wscat-like client: connects to a `ws://` or `wss://` URL, sends each
//! line of standard input as a text message, and prints what arrives.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:9001/
//! cargo run --example client -- wss://localhost:9443/ --ca /tmp/rfc6455-wss-cert.pem
//! ```
//!
//! Commands: `/ping [payload]` sends a Ping; `/close [CODE [REASON]]` starts
//! the close handshake. The program exits when the connection closes.

use std::sync::Arc;

use bytes::Bytes;
use rfc6455::rt::tokio::{MaybeTlsStream, WebSocketStream};
use rfc6455::{ClientBuilder, CloseCode, Message};
use tokio::io::{AsyncBufReadExt, BufReader};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: client URL [--ca CERT.pem]")?;
    let ca = match (args.next().as_deref(), args.next()) {
        (Some("--ca"), Some(path)) => Some(path),
        (None, _) => None,
        _ => return Err("usage: client URL [--ca CERT.pem]".into()),
    };
    let mut client = ClientBuilder::new(&url)?;
    if client.request().is_secure() {
        client = client.tls_config(Arc::new(tls_config(ca.as_deref())?));
    }
    let (ws, accepted) = WebSocketStream::connect(&client).await?;
    eprintln!(
        "connected{} (/ping, /close CODE REASON)",
        accepted
            .protocol()
            .map(|p| format!(", subprotocol {p}"))
            .unwrap_or_default()
    );
    run(ws).await
}

async fn run(ws: WebSocketStream<MaybeTlsStream>) -> Result<(), BoxError> {
    let (mut writer, mut reader) = ws.split();
    let printer = tokio::spawn(async move {
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
                    break;
                }
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else {
                    writer.close(CloseCode::NORMAL, "").await?;
                    break;
                };
                if let Some(rest) = line.strip_prefix("/ping") {
                    writer.send(Message::Ping(Bytes::from(rest.trim().to_owned()))).await?;
                } else if let Some(rest) = line.strip_prefix("/close") {
                    let mut parts = rest.trim().splitn(2, ' ');
                    let code = parts.next().filter(|c| !c.is_empty()).map_or(Ok(1000), str::parse)?;
                    writer.close(CloseCode(code), parts.next().unwrap_or("")).await?;
                    break;
                } else {
                    writer.send(Message::text(line)).await?;
                }
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)), if printer.is_finished() => break,
        }
    }
    printer.await?;
    Ok(())
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
