//! permessage-deflate's compression ratio for each window size, on a text
//! corpus: this repository's own source files (`src/**/*.rs`) sent by a
//! client connection with the window it was granted (context takeover, then
//! none), each file as one message, then each non-blank line as one (small
//! messages, as a chat or a ticker sends). Prints two Markdown tables;
//! the memory each window costs an idle connection is `tests/scale.rs`'s.
//!
//! ```text
//! cargo bench --features deflate --bench deflate_ratio
//! ```

use std::path::{Path, PathBuf};

use bytes::Buf;
use rfc6455::extensions::deflate::{DeflateConfig, DeflateParams};
use rfc6455::{Config, Connection, Message, Role};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Bytes on the wire for every message, sent with a `bits` window.
fn wire_bytes(corpus: &[String], bits: u8, takeover: bool) -> usize {
    let config = Config::default().deflate(Some(DeflateConfig::default().threshold(0)));
    let mut client = Connection::new(Role::Client, config).expect("connection");
    client.set_deflate(DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: !takeover,
        server_max_window_bits: 15,
        client_max_window_bits: bits,
    });
    let mut total = 0;
    for text in corpus {
        client.send(Message::text(text.clone())).expect("send");
        let out = client.outgoing();
        total += out.remaining();
        out.advance(out.remaining());
    }
    total
}

fn table(title: &str, corpus: &[String]) {
    let raw: usize = corpus.iter().map(String::len).sum();
    let mut lens: Vec<_> = corpus.iter().map(String::len).collect();
    lens.sort_unstable();
    println!(
        "\n{title}: {} messages, {raw} bytes (median {} bytes)\n",
        corpus.len(),
        lens[lens.len() / 2]
    );
    println!(
        "| window bits | window | context takeover: wire bytes | ratio | no context takeover: wire bytes | ratio |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for bits in 9..=15u8 {
        let takeover = wire_bytes(corpus, bits, true);
        let fresh = wire_bytes(corpus, bits, false);
        println!(
            "| {bits} | {} B | {takeover} | {:.3} | {fresh} | {:.3} |",
            1u32 << bits,
            takeover as f64 / raw as f64,
            fresh as f64 / raw as f64
        );
    }
}

fn main() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let corpus: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("source file"))
        .collect();
    table("source files", &corpus);
    let lines: Vec<String> = corpus
        .iter()
        .flat_map(|f| f.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    table("source lines", &lines);
}
