//! The opening handshake's I/O loop over an async stream.

use std::future::poll_fn;
use std::task::Poll;

use super::runtime::{Runtime, write_call};
use crate::Error;
use crate::handshake::driver_seal::Advance;
use crate::handshake::{HandshakeDriver, Progress};
use crate::transport;

/// Moves a handshake's bytes until it is done, waking at its deadline.
pub(super) async fn handshake<S, R: Runtime<S>, H: Advance>(
    stream: &mut S,
    driver: HandshakeDriver<H>,
) -> Result<H::Done, Error> {
    transport::handshake_done::<H>(handshake_io::<S, R, H>(stream, driver).await)
}

async fn handshake_io<S, R: Runtime<S>, H: Advance>(
    stream: &mut S,
    mut driver: HandshakeDriver<H>,
) -> Result<H::Done, Error> {
    // Made only if the handshake has to wait: most complete at once.
    let mut timer: Option<R::Timer> = None;
    let mut unflushed = false;
    poll_fn(|cx| {
        loop {
            let waiting = if unflushed {
                unflushed = R::poll_flush(stream, cx)?.is_pending();
                unflushed
            } else {
                match driver.poll_role(R::now())? {
                    Progress::Write => {
                        let written = transport::poll_write_buf(driver.outgoing(), |call| {
                            write_call::<S, R>(stream, cx, call)
                        });
                        unflushed = written?.is_ready();
                        !unflushed
                    }
                    Progress::Read => match R::poll_read_buf(stream, cx, driver.read_buf())? {
                        Poll::Ready(0) => {
                            driver.receive_eof();
                            false
                        }
                        Poll::Ready(_) => false,
                        Poll::Pending => true,
                    },
                    Progress::Done(done) => return Poll::Ready(Ok(done)),
                }
            };
            // Waiting on the transport: wake at the deadline too, when the
            // driver's next poll fails with the timeout.
            if waiting {
                let Some(deadline) = driver.poll_timeout() else {
                    return Poll::Pending;
                };
                let timer = timer.get_or_insert_with(|| R::timer(deadline));
                if R::poll_timer(timer, cx).is_pending() {
                    return Poll::Pending;
                }
                // The timer fired: past the deadline this fails (a poll here
                // could hand out the finished connection and lose it).
                driver.check_deadline(R::now())?;
            }
        }
    })
    .await
}
