//! Training batches, cut (and augmented) ahead of time on the "gradlab-data" thread.
//!
//! The producer walks the positions (epoch, batch) in order from where it was started, gathering
//! each batch in its epoch's seeded order and augmenting it, and hands them over a bounded
//! channel, so at most [`AHEAD`] batches wait. Every batch carries its position: the session
//! takes a batch only for the position it is at, and when it is somewhere else (a seek to a
//! checkpoint, a fork) the producer is dropped and started again there. A batch's contents
//! depend only on the seed and its position, never on timing, so the numbers are the same
//! whether the thread runs or the batch is cut inline (`threaded = false`). A batch is gathered
//! and augmented on the host and copied to the run's device once, on the data thread, so a GPU
//! step finds its inputs there already.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::{Device, Tensor};

use crate::data::{epoch_order, Augmenter, Dataset};
use crate::error::{Error, Result};
use crate::task::{Task, TaskBatch};

/// Batches prepared ahead of the one being trained.
pub const AHEAD: usize = 3;

/// What cutting a batch needs, shared with the data thread.
struct Recipe {
    data: Arc<Dataset>,
    task: Task,
    device: Device,
    batch_size: usize,
    batches_per_epoch: usize,
    seed: u64,
    augmenter: Option<Augmenter>,
}

impl Recipe {
    /// The batch at `batch` of epoch `epoch`, whose order is `order`.
    fn prepare(&self, epoch: usize, batch: usize, order: &[usize]) -> Result<TaskBatch> {
        let start = batch * self.batch_size;
        let end = start.saturating_add(self.batch_size).min(order.len());
        let indices = order.get(start..end).ok_or_else(|| {
            Error::Other(format!(
                "batch {} of epoch {} is past the {} training samples",
                batch + 1,
                epoch + 1,
                order.len()
            ))
        })?;
        // gathered and augmented on the host, then moved to the device once, here on the data
        // thread ahead of use (on the CPU the move is a no-op)
        let mut cut = self.task.gather(&self.data.train, indices, &self.data.input_shape, &Device::Cpu)?;
        if let Some(augmenter) = &self.augmenter {
            let shape = cut.inputs.shape().clone();
            let mut values = cut.inputs.flatten_all()?.to_vec1::<f32>()?;
            augmenter.apply_batch(&mut values, epoch, start, order.len())?;
            cut.inputs = Tensor::from_vec(values, shape, &Device::Cpu)?;
        }
        if !self.device.is_cpu() {
            cut.inputs = cut.inputs.to_device(&self.device)?;
            cut.targets = cut.targets.to_device(&self.device)?;
        }
        Ok(cut)
    }

    fn next(&self, (epoch, batch): (usize, usize)) -> (usize, usize) {
        if batch + 1 >= self.batches_per_epoch {
            (epoch + 1, 0)
        } else {
            (epoch, batch + 1)
        }
    }
}

struct Producer {
    /// The position of the next batch on the channel.
    next: (usize, usize),
    batches: Option<Receiver<(usize, usize, Result<TaskBatch>)>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        // a producer blocked on the full channel wakes with an error once the receiver is gone
        self.batches.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The session's source of training batches.
pub struct BatchSource {
    recipe: Arc<Recipe>,
    producer: Option<Producer>,
    /// The epoch order last used inline.
    order: Option<(usize, Vec<usize>)>,
    /// Prepare batches on the data thread (the default) or inline on the caller's.
    pub threaded: bool,
}

impl BatchSource {
    pub fn new(
        data: Arc<Dataset>,
        task: Task,
        device: Device,
        batch_size: usize,
        seed: u64,
        augmenter: Option<Augmenter>,
    ) -> Self {
        let batches_per_epoch = data.train.len().div_ceil(batch_size.max(1));
        let recipe = Recipe { data, task, device, batch_size, batches_per_epoch, seed, augmenter };
        Self { recipe: Arc::new(recipe), producer: None, order: None, threaded: true }
    }

    /// Stops the data thread (the session moved, or the run is over); the next `take` starts it
    /// again where it is asked.
    pub fn stop(&mut self) {
        self.producer = None;
    }

    /// The training batch at (`epoch`, `batch`).
    pub fn take(&mut self, epoch: usize, batch: usize) -> Result<TaskBatch> {
        if self.recipe.batches_per_epoch == 0 {
            return Err(Error::Other("the training split is empty".into()));
        }
        if !self.threaded {
            self.producer = None;
            if self.order.as_ref().is_none_or(|(e, _)| *e != epoch) {
                self.order = Some((epoch, epoch_order(self.recipe.data.train.len(), self.recipe.seed, epoch)));
            }
            let order = &self.order.as_ref().expect("set above").1;
            return self.recipe.prepare(epoch, batch, order);
        }
        if self.producer.as_ref().is_none_or(|p| p.next != (epoch, batch)) {
            self.producer = None;
            self.producer = Some(self.spawn((epoch, batch))?);
        }
        let producer = self.producer.as_mut().expect("started above");
        let received = producer.batches.as_ref().and_then(|rx| rx.recv().ok());
        match received {
            Some((e, b, result)) if (e, b) == (epoch, batch) => {
                producer.next = self.recipe.next((epoch, batch));
                if result.is_err() {
                    self.producer = None;
                }
                result
            }
            Some((e, b, _)) => {
                self.producer = None;
                Err(Error::Other(format!(
                    "the data thread sent batch {} of epoch {} for batch {} of epoch {}",
                    b + 1,
                    e + 1,
                    batch + 1,
                    epoch + 1
                )))
            }
            None => {
                self.producer = None;
                Err(Error::Other("the data thread stopped without a batch".into()))
            }
        }
    }

    fn spawn(&self, start: (usize, usize)) -> Result<Producer> {
        let (tx, rx) = sync_channel(AHEAD);
        let recipe = Arc::clone(&self.recipe);
        let thread = std::thread::Builder::new()
            .name("gradlab-data".into())
            .spawn(move || {
                let (mut epoch, mut batch) = start;
                let len = recipe.data.train.len();
                let mut order = epoch_order(len, recipe.seed, epoch);
                loop {
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| recipe.prepare(epoch, batch, &order)))
                        .unwrap_or_else(|panic| {
                            let why = panic
                                .downcast_ref::<&str>()
                                .map(ToString::to_string)
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            Err(Error::Other(format!("internal error while preparing a training batch: {why}")))
                        });
                    let failed = result.is_err();
                    if tx.send((epoch, batch, result)).is_err() || failed {
                        return;
                    }
                    let (e, b) = recipe.next((epoch, batch));
                    if e != epoch {
                        order = epoch_order(len, recipe.seed, e);
                    }
                    (epoch, batch) = (e, b);
                }
            })
            .map_err(|e| Error::Other(format!("cannot start the data thread: {e}")))?;
        Ok(Producer { next: start, batches: Some(rx), thread: Some(thread) })
    }
}
