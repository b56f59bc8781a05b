//! The streaming pipeline: draw inputs → run to the layers → segment → tally, each stage on its
//! own thread with bounded channels between them, so that the stages overlap and no queue grows
//! without bound. All dissected layers share one forward and one segmentation per batch.

use super::source::{Labeller, Model};
use super::upsample::upsample;
use anyhow::{Result, anyhow};
use crossbeam::channel::bounded;
use tch::{Device, Tensor};

/// Batches waiting between two stages.
const QUEUE: usize = 2;

/// One batch at the end of the pipeline.
pub struct Batch {
    /// The image ids.
    pub ids: Vec<u64>,
    /// Per layer, the per-image spatial maximum of the raw feature map, `[B, C]`.
    pub maxima: Vec<Tensor>,
    /// Per layer, the activations upsampled to the segmentation resolution, `[B, C, S, S]`.
    pub upsampled: Vec<Tensor>,
    /// The label maps `[B, K, S, S]` when a labeller runs.
    pub labels: Option<Tensor>,
}

/// What flows from the forward stage to the segmentation stage.
struct Forwarded {
    batch: Batch,
    images: Option<Tensor>,
    truth: Option<Tensor>,
}

/// Streams `batches` of image ids through `model` (capturing `layers`) and, when given,
/// `labeller`, handing each finished batch to `sink` in order; `sink` returns `false` to stop
/// early. The stages borrow the model and the labeller for the length of the stream.
pub fn stream(
    model: &mut Model,
    labeller: Option<&mut Labeller>,
    layers: &[usize],
    seg_size: i64,
    batches: Vec<Vec<u64>>,
    device: Device,
    mut sink: impl FnMut(Batch) -> Result<bool>,
) -> Result<()> {
    let sampler = model.sampler();
    let want_images = labeller.is_some();
    std::thread::scope(|s| {
        let (tx_in, rx_in) = bounded(QUEUE);
        s.spawn(move || {
            let _guard = tch::no_grad_guard();
            for ids in batches {
                let msg = sampler.inputs(&ids, device).map(|inputs| (ids, inputs));
                let failed = msg.is_err();
                if tx_in.send(msg).is_err() || failed {
                    break;
                }
            }
        });
        let (tx_fw, rx_fw) = bounded::<Result<Forwarded>>(QUEUE);
        let forward = s.spawn(move || {
            let _guard = tch::no_grad_guard();
            for msg in rx_in {
                let out = msg.and_then(|(ids, inputs)| {
                    let (acts, images) = model.forward(&inputs, layers, want_images)?;
                    let mut maxima = Vec::with_capacity(acts.len());
                    let mut upsampled = Vec::with_capacity(acts.len());
                    for a in &acts {
                        maxima.push(a.amax([2i64, 3].as_slice(), false));
                        upsampled.push(upsample(a, seg_size)?);
                    }
                    Ok(Forwarded {
                        batch: Batch {
                            ids,
                            maxima,
                            upsampled,
                            labels: None,
                        },
                        images,
                        truth: inputs.truth,
                    })
                });
                let failed = out.is_err();
                if tx_fw.send(out).is_err() || failed {
                    break;
                }
            }
        });
        let (rx_last, segment) = match labeller {
            None => (rx_fw, None),
            Some(labeller) => {
                let (tx_seg, rx_seg) = bounded::<Result<Forwarded>>(QUEUE);
                let handle = s.spawn(move || {
                    let _guard = tch::no_grad_guard();
                    for msg in rx_fw {
                        let out = msg.and_then(|mut f| {
                            let images = f.images.take().ok_or_else(|| {
                                anyhow!("the forward stage produced no images to segment")
                            })?;
                            f.batch.labels =
                                Some(labeller.segment(&images, f.truth.as_ref(), seg_size)?);
                            Ok(f)
                        });
                        let failed = out.is_err();
                        if tx_seg.send(out).is_err() || failed {
                            break;
                        }
                    }
                });
                (rx_seg, Some(handle))
            }
        };
        let result = (|| -> Result<()> {
            let _guard = tch::no_grad_guard();
            for msg in rx_last.iter() {
                if !sink(msg?.batch)? {
                    break;
                }
            }
            Ok(())
        })();
        drop(rx_last);
        forward
            .join()
            .map_err(|_| anyhow!("the forward stage of the dissection panicked"))?;
        if let Some(h) = segment {
            h.join()
                .map_err(|_| anyhow!("the segmentation stage of the dissection panicked"))?;
        }
        result
    })
}
