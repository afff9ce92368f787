//! The handoff as a server runs it: a [`Drain`]'s, every watched stream
//! asked for at its next message boundary, sent by its own task, and
//! acknowledged by the successor beside the sending; the serving loop that
//! ends in a drain or a handoff; and the successor's side in one call.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use tokio::io::AsyncReadExt;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::{ACK, Handoff, HandoffReport, Inherited, NotHandedOver, Predecessor, Successor, gone};
use crate::Error;
use crate::rt::drain::{Drain, DrainReport};
use crate::rt::tokio::WebSocketStream;
use crate::sync::lock;

/// The handoff a [`Drain`] runs: the successor, shared by the tasks that
/// hand their streams over one record at a time, and the
/// acknowledgements, read beside them (sending does not wait for the
/// previous record's).
#[derive(Debug)]
pub(crate) struct Transfer {
    successor: tokio::sync::Mutex<Option<Successor>>,
    /// One per record sent and not yet acknowledged, in the order sent
    /// (pushed under the successor's lock, before the record goes).
    waiting: Mutex<VecDeque<oneshot::Sender<()>>>,
    /// The successor is gone (a send or the acknowledgements failed).
    broken: AtomicBool,
    ended: tokio::sync::Notify,
    connections: AtomicUsize,
    state_bytes: AtomicU64,
}

impl Transfer {
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// The successor is gone: the connections waiting for their
    /// acknowledgement stay here.
    fn break_off(&self) {
        self.broken.store(true, Ordering::Release);
        lock(&self.waiting).clear();
        self.ended.notify_one();
    }

    /// Reads acknowledgements, each completing the oldest record waiting,
    /// until the successor's end of the socket closes or it sends anything
    /// else; then breaks off.
    async fn read_acknowledgements(&self, reader: &mut OwnedReadHalf) {
        let mut acks = [0u8; 512];
        while let Ok(n @ 1..) = reader.read(&mut acks).await {
            for &ack in acks.get(..n).unwrap_or_default() {
                let first = lock(&self.waiting).pop_front();
                match first {
                    Some(waiting) if ack == ACK => {
                        let _ = waiting.send(());
                    }
                    _ => return self.break_off(),
                }
            }
        }
        self.break_off();
    }
}

/// What the drain's registry holds while a handoff runs.
pub(crate) type Shared = Arc<Transfer>;

/// Withdraws the handoff from the drain however the transfer ends.
struct Withdraw<'a>(&'a Drain);

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.0.set_handoff(None);
    }
}

impl Drain {
    /// Hands every watched connection over to `successor` (after the
    /// listeners, which the caller sends first and then stops accepting
    /// from): each stream is asked for at its next message boundary, and its
    /// task answers with [`hand_over`](Self::hand_over). Ends when every
    /// watched task has ended, or after
    /// [`handoff_timeout`](crate::rt::drain::DrainConfig::handoff_timeout) with
    /// those that have not moved still served here ([`HandoffReport::stayed`]:
    /// drain them, or serve on); then the successor is told it has
    /// everything.
    ///
    /// # Errors
    ///
    /// The successor went away: the connections it received are its own,
    /// and every other stays here, served as before.
    pub async fn transfer(&self, mut successor: Successor) -> io::Result<HandoffReport> {
        let mut reader = successor.reader.take().ok_or_else(gone)?;
        let transfer = Arc::new(Transfer {
            successor: tokio::sync::Mutex::new(Some(successor)),
            waiting: Mutex::new(VecDeque::new()),
            broken: AtomicBool::new(false),
            ended: tokio::sync::Notify::new(),
            connections: AtomicUsize::new(0),
            state_bytes: AtomicU64::new(0),
        });
        self.set_handoff(Some(Arc::clone(&transfer)));
        let withdraw = Withdraw(self);
        let successor = {
            let acks = transfer.read_acknowledgements(&mut reader);
            let deadline = tokio::time::sleep(self.handoff_timeout());
            let broken = transfer.ended.notified();
            let (mut acks, mut deadline, mut broken) = (
                std::pin::pin!(acks),
                std::pin::pin!(deadline),
                std::pin::pin!(broken),
            );
            let mut reading = true;
            std::future::poll_fn(|cx| {
                reading = reading && acks.as_mut().poll(cx).is_pending();
                if deadline.as_mut().poll(cx).is_ready() || broken.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                self.poll_ended(cx, None)
            })
            .await;
            drop(withdraw);
            // The records under way are sent, then acknowledged.
            let successor = transfer.successor.lock().await.take();
            std::future::poll_fn(|cx| {
                reading = reading && acks.as_mut().poll(cx).is_pending();
                if reading && !lock(&transfer.waiting).is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            successor
        };
        let Some(mut successor) = successor.filter(|s| !s.broken && !transfer.is_broken()) else {
            return Err(gone());
        };
        successor.reader = Some(reader);
        successor.report.connections += transfer.connections.load(Ordering::Acquire);
        successor.report.state_bytes += transfer.state_bytes.load(Ordering::Acquire);
        let mut report = successor.finish().await?;
        report.stayed = self.live();
        Ok(report)
    }

    /// Hands `ws` over to the successor of the [`transfer`](Self::transfer)
    /// under way, with `payload` for the application there; call it when
    /// the stream's `next` returns [`Error::HandoffRequested`] (which a
    /// stream accepted with [`ServerBuilder::drain`](crate::ServerBuilder::drain),
    /// or [`attach`](Drain::attach)ed inside its watched task, as an
    /// inherited one must be, is asked for). On success
    /// the connection is the successor's: end the task.
    ///
    /// # Errors
    ///
    /// [`NotHandedOver`], with the stream back to serve on: no handoff is
    /// under way any more (it ended, or the successor is gone), or the
    /// stream's output could not be written.
    pub async fn hand_over(
        &self,
        mut ws: WebSocketStream<TcpStream>,
        payload: &[u8],
    ) -> Result<(), Box<NotHandedOver>> {
        // Output is written before the successor is locked: a peer slow to
        // read holds up only its own stream.
        if let Err(error) = ws.flush().await {
            return Err(Box::new(NotHandedOver { stream: ws, error }));
        }
        let none = || {
            Error::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "no handoff under way",
            ))
        };
        let Some(transfer) = self.handoff() else {
            return Err(Box::new(NotHandedOver {
                stream: ws,
                error: none(),
            }));
        };
        let (acknowledged, sent) = {
            let mut successor = transfer.successor.lock().await;
            let Some(successor) = successor.as_mut().filter(|_| !transfer.is_broken()) else {
                return Err(Box::new(NotHandedOver {
                    stream: ws,
                    error: none(),
                }));
            };
            let (waiting, acknowledged) = oneshot::channel();
            lock(&transfer.waiting).push_back(waiting);
            match successor.send_connection(ws, payload).await {
                Ok(sent) => (acknowledged, sent),
                Err(back) => {
                    // Not sent: its place is the last (no other is pushed
                    // while the lock is held).
                    lock(&transfer.waiting).pop_back();
                    if successor.broken {
                        transfer.break_off();
                    }
                    return Err(back);
                }
            }
        };
        match acknowledged.await {
            Ok(()) => {
                transfer.connections.fetch_add(1, Ordering::AcqRel);
                transfer.state_bytes.fetch_add(sent.bytes, Ordering::AcqRel);
                Ok(())
            }
            Err(_) => Err(sent.give_back(Error::Io(gone()))),
        }
    }
}

/// How [`serve_until`] ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Ended {
    /// Shut down: every connection was closed (see [`Drain::shutdown`]).
    Drained(DrainReport),
    /// A successor took over the listener and the connections. Those that
    /// [stayed](HandoffReport::stayed) were drained before this returned.
    HandedOver(HandoffReport),
}

/// Runs `serve` (an accept loop over `listener` spawning tasks that
/// `drain` watches and that answer [`Error::HandoffRequested`]) until
/// `shutdown` resolves, then drains, as [`Drain::serve_until`] does; or,
/// given a `handoff`, until a successor arrives there: then `serve` is no
/// longer polled (the successor accepts from `listener` instead), and the
/// listener and every connection move to it ([`Drain::transfer`]). A
/// successor that fails leaves this process serving all it had not handed
/// over, offering the handoff again at the same path.
///
/// # Errors
///
/// `serve`'s error, or the listener could not be handed over and the
/// handoff not offered again.
pub async fn serve_until<E: From<io::Error>>(
    drain: &Drain,
    listener: &TcpListener,
    mut handoff: Option<Handoff>,
    serve: impl Future<Output = Result<(), E>>,
    shutdown: impl Future<Output = ()>,
) -> Result<Ended, E> {
    let mut serve = std::pin::pin!(serve);
    let mut serving = true;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let path = handoff.as_ref().map(|h| h.path().to_owned());
        let offered = handoff.take();
        let successor = async move {
            match offered {
                Some(handoff) => Some(handoff.successor().await),
                None => std::future::pending().await,
            }
        };
        let mut successor = std::pin::pin!(successor);
        // `None`: shut down; `Some`: a successor (or the failure to accept one).
        let successor = std::future::poll_fn(|cx| {
            if serving && let Poll::Ready(result) = serve.as_mut().poll(cx) {
                serving = false;
                result?;
            }
            if shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok::<_, E>(None));
            }
            successor.as_mut().poll(cx).map(Ok)
        })
        .await?;
        let Some(successor) = successor else { break };
        let moved = match successor {
            Ok(mut successor) => match successor.listener(listener).await {
                Ok(()) => drain.transfer(successor).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        match moved {
            Ok(mut report) => {
                if report.stayed > 0 {
                    report.stayed = drain.shutdown().await.connections;
                }
                return Ok(Ended::HandedOver(report));
            }
            // Serve on, and offer again.
            Err(_) => handoff = path.map(Handoff::offer).transpose()?,
        }
    }
    let serve = async { if serving { serve.await } else { Ok(()) } };
    let report = drain.serve_until(serve, std::future::ready(())).await?;
    Ok(Ended::Drained(report))
}

/// Everything a predecessor handed over ([`Predecessor::receive_all`]).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TakenOver {
    /// The listening sockets, to accept from.
    pub listeners: Vec<TcpListener>,
    /// The connections, each with the predecessor's payload.
    pub connections: Vec<(WebSocketStream<TcpStream>, Vec<u8>)>,
    /// Snapshots that could not be thawed (their connections were closed
    /// with 1011).
    pub refused: Vec<crate::SnapshotError>,
    /// The predecessor went away before it was done: what came before is
    /// here, and the rest stays with it.
    pub broken_off: Option<io::Error>,
}

impl Predecessor {
    /// Receives everything the predecessor hands over, to its end. For a
    /// server whose connections affect each other (a chat room), which
    /// starts serving them only once all are in.
    pub async fn receive_all(mut self) -> TakenOver {
        let mut taken = TakenOver::default();
        loop {
            match self.next().await {
                Ok(Some(Inherited::Listener(listener))) => taken.listeners.push(listener),
                Ok(Some(Inherited::Connection(ws, payload))) => {
                    taken.connections.push((*ws, payload));
                }
                Ok(Some(Inherited::Refused(error))) => taken.refused.push(error),
                Ok(None) => return taken,
                Err(error) => {
                    taken.broken_off = Some(error);
                    return taken;
                }
            }
        }
    }
}
