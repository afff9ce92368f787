//! The write side's half-close, for the blocking adapter's lingering close.

use std::io;
use std::net::TcpStream;

use crate::transport::MaybeTls;

/// A stream whose write side can be shut while its read side stays open
/// (TCP's `shutdown(Write)`, TLS's `close_notify`): how the blocking
/// adapter ends a connection without a reset. After its Close it shuts
/// the write side and reads until the peer's end, so the stream is not
/// dropped with unread input (RFC 6455 §7.1.1: the server closes first).
///
/// Implemented for `TcpStream`, `UnixStream`, rustls's `StreamOwned` over
/// either, [`MaybeTlsStream`](super::MaybeTlsStream), and references and boxes of them. A stream
/// with no half-close (an in-memory pipe) implements it with the default,
/// which does nothing:
///
/// ```
/// use std::io::{self, Read, Write};
/// use rfc6455::blocking::{HalfClose, WebSocket};
/// use rfc6455::{Config, Connection, Message, Role};
///
/// /// In memory: keeps what is written, has nothing to read.
/// struct Pipe(Vec<u8>);
///
/// impl Read for Pipe {
///     fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
///         Ok(0)
///     }
/// }
///
/// impl Write for Pipe {
///     fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
///         self.0.write(bytes)
///     }
///     fn flush(&mut self) -> io::Result<()> {
///         Ok(())
///     }
/// }
///
/// impl HalfClose for Pipe {}
///
/// let conn = Connection::new(Role::Server, Config::default())?;
/// let mut ws = WebSocket::new(Pipe(Vec::new()), conn);
/// ws.send(Message::text("hi"))?;
/// assert_eq!(ws.get_ref().0, b"\x81\x02hi");
/// # Ok::<(), rfc6455::Error>(())
/// ```
pub trait HalfClose {
    /// Shuts the write side; reads go on. By default, nothing.
    ///
    /// # Errors
    ///
    /// The stream's.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl HalfClose for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl HalfClose for std::os::unix::net::UnixStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<T: HalfClose + ?Sized> HalfClose for &mut T {
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

impl<T: HalfClose + ?Sized> HalfClose for Box<T> {
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

impl<P: HalfClose, T: HalfClose> HalfClose for MaybeTls<P, T> {
    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(stream) => stream.shutdown_write(),
            Self::Rustls(stream) => stream.shutdown_write(),
        }
    }
}

impl HalfClose for crate::connection::NoTls {
    fn shutdown_write(&mut self) -> io::Result<()> {
        match *self {}
    }
}

/// TLS: `close_notify`, flushed, then the socket's write side.
#[cfg(feature = "rustls")]
impl<C, D, S> HalfClose for rustls::StreamOwned<C, S>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
    S: io::Read + io::Write + HalfClose,
{
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        io::Write::flush(self)?;
        self.sock.shutdown_write()
    }
}
