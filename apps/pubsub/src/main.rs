//! The `pubsub` server (see the library's docs for its commands and options).

#[tokio::main]
async fn main() -> Result<(), pubsub::BoxError> {
    pubsub::run().await
}
