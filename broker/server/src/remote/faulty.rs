//! A fault-injecting object store for tests and the simulator: it wraps any store and,
//! per kind of call, lets it through, fails it, delays it on the runtime's timers, or never
//! answers (a dead store); besides, a seeded fraction of calls fails. Faults can be changed
//! while the store is in use, through [`Faults`].
//!
//! It can also stamp objects with the runtime's wall clock ([`FaultyStore::stamp_clock`]):
//! a sweep compares `last_modified` with the node's `Runtime::wall_ms`, so a simulated
//! node must see times from the simulated clock, not the host's (which `InMemory` uses).
//!
//! Invariants: a fault is decided when a call starts, in call order, from one seeded
//! stream (`weir_core::rng::Rng`), so a simulated run replays exactly; nothing here reads a
//! real clock or sleeps outside the runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use weir_core::rng::Rng;
use weir_runtime::Runtime;

/// What happens to the calls of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// The call goes to the wrapped store.
    #[default]
    Pass,
    /// The call fails at once.
    Fail,
    /// The call waits this long on the runtime's timers, then goes through.
    Delay(Duration),
    /// The call never answers.
    Hang,
}

/// The kinds of calls, faulted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Puts, multipart parts, completes and aborts, copies.
    Write,
    /// Gets (whole, ranged, head).
    Read,
    /// Listings.
    List,
    /// Deletes.
    Delete,
}

/// The faults in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultPlan {
    /// Puts, parts, completes, aborts and copies.
    pub writes: Fault,
    /// Gets.
    pub reads: Fault,
    /// Listings.
    pub lists: Fault,
    /// Deletes.
    pub deletes: Fault,
    /// Besides, this many calls in a thousand fail, drawn from the seeded stream.
    pub fail_per_mille: u32,
}

impl FaultPlan {
    /// The same fault for every kind of call.
    pub fn all(fault: Fault) -> FaultPlan {
        FaultPlan {
            writes: fault,
            reads: fault,
            lists: fault,
            deletes: fault,
            fail_per_mille: 0,
        }
    }

    fn of(&self, kind: CallKind) -> Fault {
        match kind {
            CallKind::Write => self.writes,
            CallKind::Read => self.reads,
            CallKind::List => self.lists,
            CallKind::Delete => self.deletes,
        }
    }
}

/// The shared, changeable state of a [`FaultyStore`]: the plan, the seeded stream, how
/// many faults were injected, and the clock stamps.
#[derive(Debug, Clone)]
pub struct Faults(Arc<Mutex<FaultState>>);

#[derive(Debug)]
struct FaultState {
    plan: FaultPlan,
    rng: Rng,
    injected: u64,
    /// With clock stamping: when each object was written, in runtime wall-clock ms.
    stamps: Option<BTreeMap<Path, i64>>,
}

impl Faults {
    /// Put `plan` in force for the calls that start from now on.
    pub fn set(&self, plan: FaultPlan) {
        self.lock().plan = plan;
    }

    /// The plan in force.
    pub fn plan(&self) -> FaultPlan {
        self.lock().plan
    }

    /// Calls failed, delayed or hung so far.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // Each critical section is a single read or update: a poisoned lock is consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decide the fault of a call starting now.
    fn draw(&self, kind: CallKind) -> Fault {
        let mut state = self.lock();
        let planned = state.plan.of(kind);
        let per_mille = state.plan.fail_per_mille;
        let fault = if per_mille > 0 && state.rng.chance_per_mille(per_mille) {
            Fault::Fail
        } else {
            planned
        };
        if fault != Fault::Pass {
            state.injected += 1;
        }
        fault
    }
}

/// An object store that injects [`Fault`]s into calls to the store it wraps.
pub struct FaultyStore<R> {
    inner: Arc<dyn ObjectStore>,
    runtime: R,
    faults: Faults,
}

impl<R: Runtime> FaultyStore<R> {
    /// Wrap `inner`; faults are drawn from `seed` and timed by `runtime`. Nothing is
    /// injected until a plan is set through [`FaultyStore::faults`].
    pub fn new(inner: Arc<dyn ObjectStore>, runtime: R, seed: u64) -> FaultyStore<R> {
        let state = FaultState {
            plan: FaultPlan::default(),
            rng: Rng::new(seed),
            injected: 0,
            stamps: None,
        };
        FaultyStore {
            inner,
            runtime,
            faults: Faults(Arc::new(Mutex::new(state))),
        }
    }

    /// Stamp objects written through this store with `runtime.wall_ms()` and report that
    /// as their `last_modified` (objects written around it keep the inner store's time).
    pub fn stamp_clock(self) -> FaultyStore<R> {
        self.faults.lock().stamps.get_or_insert_with(BTreeMap::new);
        self
    }

    /// The handle that changes the faults in force.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// Apply the fault drawn for a call of `kind`.
    async fn enter(&self, kind: CallKind) -> object_store::Result<()> {
        enter(&self.faults, &self.runtime, kind).await
    }

    fn stamp(&self, path: &Path) {
        stamp(&self.faults, &self.runtime, path);
    }

    fn restamp(&self, meta: ObjectMeta) -> ObjectMeta {
        restamp(&self.faults, meta)
    }
}

async fn enter<R: Runtime>(
    faults: &Faults,
    runtime: &R,
    kind: CallKind,
) -> object_store::Result<()> {
    match faults.draw(kind) {
        Fault::Pass => Ok(()),
        Fault::Fail => Err(object_store::Error::Generic {
            store: "FaultyStore",
            source: format!("injected {kind:?} failure").into(),
        }),
        Fault::Delay(delay) => {
            runtime.sleep_until(runtime.now() + delay).await;
            Ok(())
        }
        Fault::Hang => std::future::pending().await,
    }
}

fn stamp<R: Runtime>(faults: &Faults, runtime: &R, path: &Path) {
    if let Some(stamps) = faults.lock().stamps.as_mut() {
        stamps.insert(path.clone(), runtime.wall_ms());
    }
}

fn restamp(faults: &Faults, mut meta: ObjectMeta) -> ObjectMeta {
    let state = faults.lock();
    let stamped = (state.stamps.as_ref()).and_then(|stamps| stamps.get(&meta.location));
    if let Some(modified) = stamped.and_then(|&ms| chrono::DateTime::from_timestamp_millis(ms)) {
        meta.last_modified = modified;
    }
    meta
}

impl<R: Runtime> Clone for FaultyStore<R> {
    fn clone(&self) -> Self {
        FaultyStore {
            inner: Arc::clone(&self.inner),
            runtime: self.runtime.clone(),
            faults: self.faults.clone(),
        }
    }
}

impl<R> fmt::Debug for FaultyStore<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl<R> fmt::Display for FaultyStore<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl<R: Runtime> ObjectStore for FaultyStore<R> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.enter(CallKind::Write).await?;
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.stamp(location);
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.enter(CallKind::Write).await?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            store: self.clone(),
            location: location.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.enter(CallKind::Read).await?;
        let mut result = self.inner.get_opts(location, options).await?;
        result.meta = self.restamp(result.meta);
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let store = self.clone();
        locations
            .then(move |location| {
                let store = store.clone();
                async move {
                    let location = location?;
                    store.enter(CallKind::Delete).await?;
                    store.inner.delete(&location).await?;
                    if let Some(stamps) = store.faults.lock().stamps.as_mut() {
                        stamps.remove(&location);
                    }
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let store = self.clone();
        let prefix = prefix.cloned();
        stream::once(async move {
            let entered = store.enter(CallKind::List).await;
            (store, prefix, entered)
        })
        .flat_map(|(store, prefix, entered)| match entered {
            Ok(()) => {
                let faults = store.faults.clone();
                (store.inner.list(prefix.as_ref()))
                    .map(move |meta| meta.map(|meta| restamp(&faults, meta)))
                    .boxed()
            }
            Err(error) => stream::once(async move { Err(error) }).boxed(),
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.enter(CallKind::List).await?;
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed.objects = (listed.objects.into_iter())
            .map(|meta| self.restamp(meta))
            .collect();
        Ok(listed)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.enter(CallKind::Write).await?;
        self.inner.copy_opts(from, to, options).await?;
        self.stamp(to);
        Ok(())
    }
}

/// A multipart upload whose parts, completion and abort go through the faults.
struct FaultyUpload<R> {
    inner: Box<dyn MultipartUpload>,
    store: FaultyStore<R>,
    location: Path,
}

impl<R> fmt::Debug for FaultyUpload<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyUpload")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<R: Runtime> MultipartUpload for FaultyUpload<R> {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        // The fault is drawn now, when the part starts, as for every other call; a failed
        // part never reaches the wrapped upload.
        let fault = self.store.faults.draw(CallKind::Write);
        if fault == Fault::Fail {
            return Box::pin(async {
                Err(object_store::Error::Generic {
                    store: "FaultyStore",
                    source: "injected part failure".into(),
                })
            });
        }
        let part = self.inner.put_part(data);
        let runtime = self.store.runtime.clone();
        Box::pin(async move {
            match fault {
                Fault::Pass | Fault::Fail => {}
                Fault::Delay(delay) => runtime.sleep_until(runtime.now() + delay).await,
                Fault::Hang => std::future::pending().await,
            }
            part.await
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.store.enter(CallKind::Write).await?;
        let result = self.inner.complete().await?;
        self.store.stamp(&self.location);
        Ok(result)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.store.enter(CallKind::Write).await?;
        self.inner.abort().await
    }
}
