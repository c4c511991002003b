//! Response heads handed back from Python threads to the I/O thread, in batches.
//!
//! Completing a request's oneshot from a Python thread wakes the I/O runtime from outside,
//! which costs an eventfd write per response. Instead, replies go to an outbox; the first one
//! of a batch wakes the delivery task, which completes them all on the I/O thread, where
//! waking a connection task is a plain queue push (benches/README.md, "syscalls").

use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify};

use crate::http::Response;

type Delivery = (oneshot::Sender<Response>, Response);

#[derive(Default)]
struct Batch {
    replies: Vec<Delivery>,
}

#[derive(Default)]
pub struct Outbox {
    pending: Mutex<Batch>,
    ready: Notify,
}

impl Outbox {
    /// Runs on the I/O runtime for the life of the server.
    pub async fn deliver(self: Arc<Self>) {
        let mut batch = Batch::default();
        loop {
            self.ready.notified().await;
            std::mem::swap(&mut batch, &mut *self.lock());
            for (tx, response) in batch.replies.drain(..) {
                let _ = tx.send(response);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection the response was for has closed.
#[derive(Debug)]
pub struct ClientGone;

/// Where one request's response head goes.
pub struct Reply {
    tx: oneshot::Sender<Response>,
    outbox: Arc<Outbox>,
    /// The request's wait for a Python thread, carried on the response for the access log.
    queue_time: Option<std::time::Duration>,
}

impl Reply {
    pub fn new(outbox: Arc<Outbox>) -> (Reply, oneshot::Receiver<Response>) {
        let (tx, rx) = oneshot::channel();
        let reply = Reply {
            tx,
            outbox,
            queue_time: None,
        };
        (reply, rx)
    }

    /// Whether the connection this response was for has closed.
    pub fn is_client_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues `response` for delivery; fails (dropping it) if the client is already gone.
    /// Notes the request's queue time on whatever response is sent.
    pub fn set_queue_time(&mut self, queue_time: std::time::Duration) {
        self.queue_time = Some(queue_time);
    }

    pub fn send(self, mut response: Response) -> Result<(), ClientGone> {
        response.queue_time = self.queue_time;
        if self.tx.is_closed() {
            return Err(ClientGone);
        }
        let first_of_batch = {
            let mut pending = self.outbox.lock();
            pending.replies.push((self.tx, response));
            pending.replies.len() == 1
        };
        if first_of_batch {
            self.outbox.ready.notify_one();
        }
        Ok(())
    }
}
