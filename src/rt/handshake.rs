//! The opening handshake's I/O loop over an async stream.

use std::future::poll_fn;
use std::task::{Context, Poll};

use super::runtime::{Runtime, write_call};
use crate::handshake::driver_seal::Advance;
use crate::handshake::{HandshakeDriver, Progress};
use crate::transport;
use crate::{Error, Role};

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
    let mut answered = false;
    poll_fn(|cx| {
        loop {
            let waiting = if unflushed {
                unflushed = R::poll_flush(stream, cx)?.is_pending();
                unflushed
            } else {
                let progress = driver.poll_role(R::now()).inspect_err(|_| {
                    if answered && H::ROLE == Role::Server {
                        part::<S, R>(stream, cx);
                    }
                })?;
                match progress {
                    Progress::Write => {
                        answered = true;
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

/// After a server's refusal is written: reads what already arrived (a
/// transport closed with unread input answers with a reset, which can
/// overtake the response) and shuts the write side, waiting for neither.
/// Whatever the client sends later meets a closed socket, after the
/// response and its end. Bounded, so a client that keeps sending does not
/// keep the task.
fn part<S, R: Runtime<S>>(stream: &mut S, cx: &mut Context<'_>) {
    let mut scrap = [0; 1024];
    for _ in 0..32 {
        match R::poll_read_slice(stream, cx, &mut scrap) {
            Poll::Ready(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    let _ = R::poll_shutdown(stream, cx);
}
