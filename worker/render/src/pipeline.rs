//! The frame pipeline: decode → fit → compose (in parallel) → ordered write to the encoder.
//!
//! Threads, all scoped to one render:
//! - a loader decodes photos in order (a JPEG much larger than its plate at 1/2, 1/4 or 1/8 scale)
//!   and fits each to a plate, one photo ahead of the frames being composed (a rendezvous channel:
//!   at most one finished plate waits), and drops the decoded photo as soon as its plate exists:
//!   at most ~3 plates and one decoded photo live;
//! - the calling thread walks the timeline and spawns one compose task per frame on a rayon pool,
//!   each into a yuv buffer taken from a small fixed set, so memory stays bounded and buffers are
//!   reused;
//! - a writer puts finished frames back in order and writes each whole to ffmpeg's stdin, then
//!   returns its buffer to the set. Progress is reported from here, by frames written, and a
//!   copy of the poster's frame is handed to whoever makes the poster.
//!
//! Decode and compose threads run at a lower priority ([`super::nice`]) so they only use the CPU
//! the encoder leaves idle. Any failure, or `cancel`, stops every thread at its next frame.

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write,
    panic::{self, AssertUnwindSafe},
    path::PathBuf,
    process::ChildStdin,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    },
    time::Duration,
};

use minimoto_common::{limits::Limits, spec::RenderSpec};
use minimoto_photo::{self as photo, PhotoError};

use super::{
    RenderError,
    compose::{self, Canvas, ScratchPool},
    fit::{self, internal},
    nice,
    timeline::Timeline,
    yuv::{self, YuvPlate},
};

/// Memory the in-flight yuv frames may use; the number of buffers is derived from it (at least
/// 3 so composing can run ahead of the writer, at most 8: more showed no gain).
const FRAME_BUDGET: usize = 64 << 20;
/// How often blocked threads look at the cancel flag.
const POLL: Duration = Duration::from_millis(50);

/// What a render needs to produce its frames.
#[derive(Debug)]
pub struct Job<'a> {
    pub spec: &'a RenderSpec,
    pub photos: &'a [PathBuf],
    pub limits: &'a Limits,
    pub timeline: &'a Timeline,
}

/// The first failure wins; everyone else just stops.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    failure: Mutex<Option<RenderError>>,
}

impl Shared {
    fn fail(&self, e: RenderError) {
        let mut slot = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(e);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

type Frame = (u64, Result<Vec<u8>, RenderError>);

/// Where a copy of one frame goes: the poster's frame number and its receiver.
pub type Keep = (u64, SyncSender<Vec<u8>>);

/// Composes every frame of `job` and writes it to `stdin` (closed at the end); sends a copy of
/// frame `keep.0` to `keep.1` once it is written.
pub fn run(
    job: &Job<'_>,
    stdin: ChildStdin,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
    keep: Keep,
) -> Result<(), RenderError> {
    let shared = Shared::default();
    let total = job.timeline.total_frames();
    let frame_len = yuv::frame_len(job.spec.width, job.spec.height);
    let (plate_tx, plate_rx) = mpsc::sync_channel(0);
    let (done_tx, done_rx) = mpsc::channel::<Frame>();
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..(FRAME_BUDGET / frame_len).clamp(3, 8) {
        free_tx.send(vec![0; frame_len]).map_err(internal)?;
    }
    let written = std::thread::scope(|s| {
        s.spawn(|| load_plates(job, plate_tx, &shared, cancel));
        let writer =
            s.spawn(|| write_frames(stdin, done_rx, free_tx, total, progress, keep, &shared));
        if let Err(e) = dispatch(job, plate_rx, free_rx, done_tx, &shared, cancel) {
            shared.fail(e);
        }
        writer.join()
    });
    if cancel.load(Ordering::SeqCst) {
        return Err(RenderError::Cancelled);
    }
    if let Some(e) = shared
        .failure
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(e);
    }
    match written {
        Ok(n) if n == total => Ok(()),
        Ok(n) => Err(internal(format!("wrote {n} of {total} frames"))),
        Err(_) => Err(internal("the frame writer panicked")),
    }
}

/// Loader thread: decode and fit each photo in order, handing plates over one at a time.
fn load_plates(
    job: &Job<'_>,
    plates: SyncSender<Result<Arc<YuvPlate>, RenderError>>,
    shared: &Shared,
    cancel: &AtomicBool,
) {
    nice::lower_current_thread();
    let spec = job.spec;
    let canvas = (spec.width, spec.height);
    for (i, path) in job.photos.iter().enumerate() {
        // On screen for its own time and half of each transition at its ends (for the first and
        // last photo one half less: their pan is a little faster).
        let seconds = spec.seconds_of(i) + spec.transition.seconds;
        let plate_of = |photo: (u32, u32)| {
            fit::plate_for(
                canvas,
                photo,
                spec.motion,
                spec.motion_strength,
                spec.fit,
                seconds,
            )
        };
        if shared.stopped() || cancel.load(Ordering::SeqCst) {
            return;
        }
        let load = || {
            // A photo much larger than its plate is decoded at 1/2, 1/4 or 1/8 scale (JPEG).
            let min_scale = |info: photo::PhotoInfo| {
                let photo = (info.width, info.height);
                fit::min_scale(photo, plate_of(photo), job.spec.fit)
            };
            let decoded = photo::decode_scaled(path, job.limits, job.spec.background.0, min_scale)
                .map_err(|source| RenderError::Photo {
                    index: i + 1,
                    source,
                })?;
            // The decoded photo is dropped on return, as soon as its plate exists, and the RGBx
            // plate as soon as its yuv420p copy does.
            let plate = plate_of(decoded.dimensions());
            let plate = fit::fit(&decoded, plate, job.spec.fit, job.spec.background)?;
            YuvPlate::from_rgbx(&plate).map(Arc::new)
        };
        // A decoder that panics on a malformed file fails that photo, not the worker.
        let plate = panic::catch_unwind(AssertUnwindSafe(load)).unwrap_or_else(|_| {
            Err(RenderError::Photo {
                index: i + 1,
                source: PhotoError::Corrupt("the decoder could not make sense of it".into()),
            })
        });
        let failed = plate.is_err();
        if plates.send(plate).is_err() || failed {
            return;
        }
    }
}

/// Calling thread: walk the timeline, make sure the plates each frame needs are loaded, and spawn
/// its composition.
fn dispatch(
    job: &Job<'_>,
    plate_rx: Receiver<Result<Arc<YuvPlate>, RenderError>>,
    free_rx: Receiver<Vec<u8>>,
    done_tx: mpsc::Sender<Frame>,
    shared: &Shared,
    cancel: &AtomicBool,
) -> Result<(), RenderError> {
    let scratch = ScratchPool::default();
    let queues = Queues {
        plate_rx,
        free_rx,
        done_tx,
    };
    match compose_pool() {
        Some(pool) => {
            pool.in_place_scope(|scope| spawn_frames(scope, job, &queues, &scratch, shared, cancel))
        }
        None => rayon::in_place_scope(|scope| {
            spawn_frames(scope, job, &queues, &scratch, shared, cancel)
        }),
    }
}

/// The dispatcher's ends of the channels.
#[derive(Debug)]
struct Queues {
    plate_rx: Receiver<Result<Arc<YuvPlate>, RenderError>>,
    free_rx: Receiver<Vec<u8>>,
    done_tx: mpsc::Sender<Frame>,
}

fn spawn_frames<'s>(
    scope: &rayon::Scope<'s>,
    job: &Job<'_>,
    queues: &Queues,
    scratch: &'s ScratchPool,
    shared: &Shared,
    cancel: &AtomicBool,
) -> Result<(), RenderError> {
    let canvas = Canvas {
        width: job.spec.width,
        height: job.spec.height,
        motion: job.spec.motion,
        strength: job.spec.motion_strength,
    };
    // Plates of the photos still on screen, oldest first.
    let mut loaded: VecDeque<(usize, Arc<YuvPlate>)> = VecDeque::new();
    let mut next_photo = 0;
    for f in 0..job.timeline.total_frames() {
        let plan = job.timeline.frame(f);
        let newest = plan.blend.map_or(plan.base.photo, |b| b.layer.photo);
        while next_photo <= newest {
            let Some(plate) = wait(&queues.plate_rx, shared, cancel)? else {
                return Ok(());
            };
            loaded.push_back((next_photo, plate?));
            next_photo += 1;
        }
        while loaded.front().is_some_and(|(i, _)| *i < plan.base.photo) {
            loaded.pop_front();
        }
        let plate_of = |photo: usize| {
            loaded
                .iter()
                .find(|(i, _)| *i == photo)
                .map(|(_, p)| Arc::clone(p))
                .ok_or_else(|| internal(format!("plate {photo} is not loaded")))
        };
        let base = plate_of(plan.base.photo)?;
        let over = plan
            .blend
            .map(|b| plate_of(b.layer.photo).map(|p| (p, b)))
            .transpose()?;
        let Some(mut out) = wait(&queues.free_rx, shared, cancel)? else {
            return Ok(());
        };
        let done = queues.done_tx.clone();
        scope.spawn(move |_| {
            let mut s = scratch.take();
            let blend = over.as_ref().map(|(p, b)| (p.as_ref(), *b));
            let result = compose::compose(&mut s, canvas, (&base, plan.base), blend, &mut out);
            scratch.give(s);
            // The writer may have stopped already; then the frame is simply dropped.
            let _ = done.send((f, result.map(|()| out)));
        });
    }
    Ok(())
}

/// Waits for the next item, giving up when the render stops (`Ok(None)`) or is cancelled.
fn wait<T>(
    rx: &Receiver<T>,
    shared: &Shared,
    cancel: &AtomicBool,
) -> Result<Option<T>, RenderError> {
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(RenderError::Cancelled);
        }
        if shared.stopped() {
            return Ok(None);
        }
        match rx.recv_timeout(POLL) {
            Ok(item) => return Ok(Some(item)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
        }
    }
}

/// Writer thread: frames in order to ffmpeg, buffers back to the free set. Returns how many
/// frames were written.
fn write_frames(
    mut stdin: ChildStdin,
    done: Receiver<Frame>,
    free: mpsc::Sender<Vec<u8>>,
    total: u64,
    progress: &(dyn Fn(f64) + Sync),
    keep: Keep,
    shared: &Shared,
) -> u64 {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    let mut reported = 0u64;
    for (f, frame) in done {
        match frame {
            Ok(buf) => pending.insert(f, buf),
            Err(e) => {
                shared.fail(e);
                break;
            }
        };
        while let Some(buf) = pending.remove(&next) {
            if shared.stopped() {
                return next;
            }
            if let Err(e) = stdin.write_all(&buf) {
                shared.fail(RenderError::Encoder {
                    message: format!("ffmpeg stopped reading frames ({e})"),
                    log: String::new(),
                });
                return next;
            }
            if next == keep.0 {
                // The receiver may be gone (it failed): the render goes on and reports that.
                let _ = keep.1.try_send(buf.clone());
            }
            next += 1;
            // Percent steps: at most ~100 calls whatever the length.
            let percent = next * 100 / total.max(1);
            if percent > reported {
                reported = percent;
                progress(next as f64 / total as f64);
            }
            let _ = free.send(buf);
        }
    }
    next
}

/// The compose pool: one thread per core, each at lower priority (set once, when it starts).
/// `None` if the pool cannot be built; rayon's global pool is used then.
fn compose_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("minimoto-compose-{i}"))
            .start_handler(|_| nice::lower_current_thread())
            .build()
            .ok()
    })
    .as_ref()
}
