//! Connections the test can cut: every accepted socket is wrapped so that
//! `KillSwitch::kill` makes its pending and future reads and writes fail, as
//! a dropped TCP connection does.

use futures::task::AtomicWaker;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug, Default)]
struct Liveness {
    killed: AtomicBool,
    waker: AtomicWaker,
}

/// Cuts every connection accepted so far on one listener.
#[derive(Debug, Default)]
pub struct KillSwitch {
    connections: Mutex<Vec<Weak<Liveness>>>,
}

impl KillSwitch {
    pub fn wrap(&self, stream: TcpStream) -> KillableStream {
        let liveness = Arc::new(Liveness::default());
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        connections.retain(|c| c.strong_count() > 0);
        connections.push(Arc::downgrade(&liveness));
        KillableStream { stream, liveness }
    }

    pub fn kill(&self) {
        let connections = std::mem::take(
            &mut *self
                .connections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for liveness in connections.iter().filter_map(Weak::upgrade) {
            liveness.killed.store(true, Ordering::SeqCst);
            liveness.waker.wake();
        }
    }
}

/// A TCP stream that fails once its switch is thrown.
#[derive(Debug)]
pub struct KillableStream {
    stream: TcpStream,
    liveness: Arc<Liveness>,
}

impl KillableStream {
    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        self.liveness.waker.register(cx.waker());
        if self.liveness.killed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection cut by the test",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for KillableStream {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}
