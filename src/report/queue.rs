//! An ordered queue drained by a background task: reporters are called synchronously by
//! the engine, while their API calls (GitHub, Slack) run in order on the task.

use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

pub struct Queue<T> {
    tx: Mutex<Option<UnboundedSender<T>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Send + 'static> Queue<T> {
    /// Spawn `consume` on the current runtime; it gets every item pushed, in order.
    pub fn start<F>(consume: impl FnOnce(UnboundedReceiver<T>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = unbounded_channel();
        let task = tokio::spawn(consume(rx));
        Self {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Queue an item; after `finish` it is dropped.
    pub fn push(&self, item: T) {
        if let Some(tx) = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = tx.send(item);
        }
    }

    /// Close the queue and wait at most `limit` for it to drain; false if it did not.
    pub async fn finish(&self, limit: std::time::Duration) -> bool {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match task {
            Some(task) => tokio::time::timeout(limit, task).await.is_ok(),
            None => true,
        }
    }
}
