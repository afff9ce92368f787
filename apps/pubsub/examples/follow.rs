//! Follows topics on a pubsub server (or cluster) across reconnections:
//! each new connection resumes every topic from the last position
//! received, so a dropped connection or a restarted node costs no message
//! while the history holds them; what it could not recover is reported.
//!
//! ```text
//! cargo run --release -p rfc6455-pubsub -- --listen 127.0.0.1:9101
//! cargo run -p rfc6455-pubsub --example follow -- ws://127.0.0.1:9101/ news sports
//! ```
//!
//! Each message prints as `topic EPOCH:OFFSET payload`; connections, resumes
//! and losses go to standard error.

use pubsub::follow::{Event, Follower};
use pubsub::wire;
use rfc6455::rt::reconnect::Reconnect;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: follow URL TOPIC...")?;
    let mut follower = Follower::new(Reconnect::new(url.as_str())?);
    for topic in args {
        follower = follower.follow(&topic);
    }
    loop {
        match follower.next().await? {
            Event::Message { topic, at, payload } => {
                println!("{topic} {} {payload}", wire::position(at));
            }
            Event::Lost {
                topic,
                last,
                earliest,
            } => eprintln!(
                "* {topic}: lost the messages after {} and before {}",
                wire::position(last),
                wire::position(earliest)
            ),
            event => eprintln!("* {event:?}"),
        }
    }
}
