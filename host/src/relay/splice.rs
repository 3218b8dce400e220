//! Socket to socket inside the kernel: `splice(2)` through a pipe (Linux), for the
//! Vision direct phase, where both ends are plain TCP sockets and the bytes need no
//! look. Elsewhere [`Pipe::new`] says `Unsupported` and the relay keeps copying.
//!
//! The pipe is only ever filled when empty and emptied before the next fill: a pipe
//! counts buffers, not bytes, so a fill into a partly full pipe could see "full" and
//! be taken for "the socket has nothing", and stall.

use std::io;
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// At most this many bytes sit in the kernel between the two sockets (the default
/// pipe size).
pub const PIPE_BYTES: usize = 64 * 1024;

/// A pipe between two sockets, and how many bytes are in it.
pub struct Pipe {
    #[cfg(target_os = "linux")]
    fds: [std::os::fd::OwnedFd; 2],
    held: usize,
}

impl Pipe {
    #[cfg(target_os = "linux")]
    pub fn new() -> io::Result<Pipe> {
        use std::os::fd::FromRawFd;
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array on success, which the
        // OwnedFds then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both are fresh descriptors owned by nobody else.
        let fds = unsafe {
            [
                std::os::fd::OwnedFd::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            ]
        };
        Ok(Pipe { fds, held: 0 })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> io::Result<Pipe> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Bytes in the pipe, not yet on their way out.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves what `from` has (up to the pipe's size) into the empty pipe; 0 is the end
    /// of `from`'s stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>, from: &TcpStream) -> Poll<io::Result<usize>> {
        debug_assert_eq!(self.held, 0);
        let n = ready!(self.poll_splice(cx, from, Interest::READABLE, true))?;
        self.held += n;
        Poll::Ready(Ok(n))
    }

    /// Moves what the pipe holds into `to`; how many bytes went.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>, to: &TcpStream) -> Poll<io::Result<usize>> {
        let n = ready!(self.poll_splice(cx, to, Interest::WRITABLE, false))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.held -= n.min(self.held);
        Poll::Ready(Ok(n))
    }

    #[cfg(target_os = "linux")]
    fn poll_splice(
        &mut self,
        cx: &mut Context<'_>,
        socket: &TcpStream,
        interest: Interest,
        into_pipe: bool,
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsRawFd;
        let sock = socket.as_raw_fd();
        let (from, to, len) = if into_pipe {
            (sock, self.fds[1].as_raw_fd(), PIPE_BYTES)
        } else {
            (self.fds[0].as_raw_fd(), sock, self.held)
        };
        loop {
            if interest.is_readable() {
                ready!(socket.poll_read_ready(cx))?;
            } else {
                ready!(socket.poll_write_ready(cx))?;
            }
            let moved = socket.try_io(interest, || {
                // SAFETY: plain descriptors and null offsets (both are streams).
                let n = unsafe {
                    libc::splice(
                        from,
                        std::ptr::null_mut(),
                        to,
                        std::ptr::null_mut(),
                        len,
                        libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                    )
                };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            match moved {
                Ok(n) => return Poll::Ready(Ok(n)),
                // try_io cleared the readiness: wait for the socket again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn poll_splice(
        &mut self,
        _: &mut Context<'_>,
        _: &TcpStream,
        _: Interest,
        _: bool,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
}

/// Ends the sending side of `socket` (its FIN), as a shutdown of the stream would.
pub fn shutdown_write(socket: &TcpStream) -> io::Result<()> {
    socket2_shutdown(socket)
}

#[cfg(unix)]
fn socket2_shutdown(socket: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: shutdown(2) on a socket descriptor the stream owns for its whole life.
    if unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_WR) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(unix))]
fn socket2_shutdown(_: &TcpStream) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}
