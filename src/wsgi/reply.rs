//! Response heads handed back from Python threads to the I/O thread, in batches.
//!
//! Completing a request's oneshot from a Python thread wakes the I/O runtime from outside,
//! which costs an eventfd write per response. Instead, replies go to an outbox; the first one
//! of a batch wakes the delivery task, which completes them all on the I/O thread, where
//! waking a connection task is a plain queue push (benches/README.md, "syscalls").

use std::sync::{Arc, Mutex};

use hyper::Response;
use tokio::sync::{oneshot, Notify};

use crate::http::ResponseBody;

type Delivery = (
    oneshot::Sender<Response<ResponseBody>>,
    Response<ResponseBody>,
);

#[derive(Default)]
pub struct Outbox {
    pending: Mutex<Vec<Delivery>>,
    ready: Notify,
}

impl Outbox {
    /// Runs on the I/O runtime for the life of the server.
    pub async fn deliver(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.ready.notified().await;
            std::mem::swap(
                &mut batch,
                &mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()),
            );
            for (tx, response) in batch.drain(..) {
                let _ = tx.send(response);
            }
        }
    }
}

/// The connection the response was for has closed.
#[derive(Debug)]
pub struct ClientGone;

/// Where one request's response head goes.
pub struct Reply {
    tx: oneshot::Sender<Response<ResponseBody>>,
    outbox: Arc<Outbox>,
}

impl Reply {
    pub fn new(outbox: Arc<Outbox>) -> (Reply, oneshot::Receiver<Response<ResponseBody>>) {
        let (tx, rx) = oneshot::channel();
        (Reply { tx, outbox }, rx)
    }

    /// Whether the connection this response was for has closed.
    pub fn is_client_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues `response` for delivery; fails (dropping it) if the client is already gone.
    pub fn send(self, response: Response<ResponseBody>) -> Result<(), ClientGone> {
        if self.tx.is_closed() {
            return Err(ClientGone);
        }
        let first_of_batch = {
            let mut pending = self
                .outbox
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pending.push((self.tx, response));
            pending.len() == 1
        };
        if first_of_batch {
            self.outbox.ready.notify_one();
        }
        Ok(())
    }
}
