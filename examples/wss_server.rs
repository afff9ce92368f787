//! The echo server over TLS (rustls). A self-signed certificate for
//! `localhost` and `127.0.0.1` is made at start and written next to the
//! system's temporary files, so the `client` example can trust it.
//!
//! ```text
//! cargo run --example wss_server                      # wss://localhost:9443
//! cargo run --example client -- wss://localhost:9443/ --ca /tmp/rfc6455-wss-cert.pem
//! ```

use rfc6455::rt::tokio::WebSocketStream;
use rfc6455::{Error, ServerBuilder};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[path = "support/echo.rs"]
mod echo;
#[path = "support/tls.rs"]
mod tls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9443".to_owned());
    let (config, pem) = tls::self_signed(&[])?;
    let cert_path = std::env::temp_dir().join("rfc6455-wss-cert.pem");
    std::fs::write(&cert_path, pem)?;
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind(&addr).await?;
    let port = listener.local_addr()?.port();
    eprintln!(
        "wss_server: listening on wss://localhost:{port}/ (certificate: {})",
        cert_path.display()
    );
    eprintln!(
        "try: cargo run --example client -- wss://localhost:{port}/ --ca {}",
        cert_path.display()
    );
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result: Result<(), Error> = async {
                tcp.set_nodelay(true)?;
                let tls = acceptor.accept(tcp).await?;
                let mut ws = WebSocketStream::accept(tls, &ServerBuilder::new()).await?;
                echo::echo(&mut ws).await
            }
            .await;
            if let Err(error) = result {
                eprintln!("wss_server: connection ended: {error}");
            }
        });
    }
}
