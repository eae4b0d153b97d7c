//! Coalescing of small Redis calls made by many handlers at once.
//!
//! Every handler in flight checks its message's done mark and settles it.
//! Sent one by one, those are a round trip, a write system call and (for
//! settling) a script call each. A [`Batcher`] queues them instead: a task
//! takes whatever is queued (up to a limit), sends it as one pipeline or
//! one script call, and answers each caller. Under no load a call goes out
//! alone at once; under load, the calls that arrive while earlier batches
//! are in flight (a few at once) make up the next. Nothing waits on a
//! timer.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::error::Error;

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// Queues requests for a task that sends them in batches.
#[derive(Debug)]
pub(crate) struct Batcher<Req, Resp> {
    queue: mpsc::UnboundedSender<(Req, Reply<Resp>)>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// Starts the batching task: `flush` turns up to `max` requests into
    /// one answer each, in order. The task ends when the batcher is
    /// dropped.
    pub(crate) fn new<F, Fut>(max: usize, flush: F) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Resp>, Error>> + Send + 'static,
    {
        let (queue, mut requests) = mpsc::unbounded_channel::<(Req, Reply<Resp>)>();
        let flush = std::sync::Arc::new(flush);
        // A few batches may be in flight at once, so one slow round trip
        // does not hold up the calls queued behind it.
        let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(first) = requests.recv().await {
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < max {
                    match requests.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let flush = flush.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    answer(batch, &*flush).await;
                });
            }
        });
        Batcher { queue }
    }

    /// Sends one request with the next batch and waits for its answer.
    pub(crate) async fn call(&self, request: Req) -> Result<Resp, Error> {
        let (reply, answer) = oneshot::channel();
        let gone = || Error::UnexpectedReply {
            script: "batch",
            reply: "the batching task stopped".into(),
        };
        self.queue.send((request, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Batches one batcher may have in flight at once.
const IN_FLIGHT: usize = 4;

/// Flushes one batch and answers each of its callers.
async fn answer<Req, Resp, F, Fut>(batch: Vec<(Req, Reply<Resp>)>, flush: &F)
where
    F: Fn(Vec<Req>) -> Fut,
    Fut: Future<Output = Result<Vec<Resp>, Error>>,
{
    let (calls, replies): (Vec<Req>, Vec<Reply<Resp>>) = batch.into_iter().unzip();
    let count = calls.len();
    match flush(calls).await {
        Ok(answers) if answers.len() == count => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(answers) => {
            for reply in replies {
                let _ = reply.send(Err(Error::UnexpectedReply {
                    script: "batch",
                    reply: format!("{} answers to {count} calls", answers.len()),
                }));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(shared(&e)));
            }
        }
    }
}

/// The error of a failed batch, for each of its callers: a Redis error is
/// copied (its kind decides retries), anything else described.
fn shared(e: &Error) -> Error {
    match e {
        Error::Redis(e) => Error::Redis(e.clone()),
        other => Error::UnexpectedReply {
            script: "batch",
            reply: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_each_caller_in_batches() {
        let sizes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = std::sync::Arc::new(Batcher::new(8, move |calls: Vec<u32>| {
            seen.lock().unwrap().push(calls.len());
            async move { Ok(calls.into_iter().map(|c| c * 2).collect()) }
        }));
        let calls: Vec<_> = (0..40)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.call(i).await.unwrap() })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), 2 * i as u32);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|n| *n <= 8), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_caller() {
        let batcher = Batcher::new(4, |_calls: Vec<u32>| async {
            Err::<Vec<u32>, _>(Error::UnexpectedReply {
                script: "test",
                reply: "boom".into(),
            })
        });
        let e = batcher.call(1).await.unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
