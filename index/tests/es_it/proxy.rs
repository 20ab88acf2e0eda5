//! A TCP proxy on 127.0.0.1 in front of the Elasticsearch under test (the mock or a real
//! cluster) that can vanish: its listener closes, open connections are cut, and new ones are
//! refused until it comes back on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Pending connections the proxy's listener queues: plenty for a test's handful of clients.
const LISTEN_BACKLOG: u32 = 128;

#[derive(Debug)]
pub struct FlakyProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    /// The accept loop; it owns every connection task, so aborting it cuts them all.
    accept: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Rebinding the same port right after closing it must not fail on TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut client, _)) = accepted else { continue };
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

impl FlakyProxy {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<FlakyProxy> {
        let listener = bind("127.0.0.1:0".parse()?)?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, upstream));
        Ok(FlakyProxy {
            addr,
            upstream,
            accept: Arc::new(Mutex::new(Some(task))),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes the listener and cuts every connection now, and listens again on the same
    /// port after `outage`. Returns at once; the returned task finishes when it is back.
    pub fn vanish_for(&self, outage: Duration) -> JoinHandle<anyhow::Result<()>> {
        let task = self.accept.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
        }
        let (addr, upstream, slot) = (self.addr, self.upstream, Arc::clone(&self.accept));
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            let listener = bind(addr)?;
            let task = tokio::spawn(accept_loop(listener, upstream));
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(task);
            }
            Ok(())
        })
    }
}
