//! The pipeline driven end to end on a real library folder.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::album::AlbumMode;
use crate::dest::Upload;
use crate::error::DestError;
use crate::store::OnDelete;
use std::io::Read;

/// An engine in `dir/home` watching `photos` (one album, the library),
/// with the folder scanned and its files queued.
fn scanned(dir: &Path, photos: PathBuf, album: Option<&str>) -> (crate::Home, crate::Engine) {
    let home = crate::Home::open(Some(dir.join("home"))).unwrap();
    let engine = crate::Engine::open(home.clone()).unwrap();
    let spec = crate::WatchSpec {
        folder: photos,
        mode: AlbumMode::Single,
        album_names: crate::AlbumNames::Leaf,
        date_format: Default::default(),
        album: album.map(str::to_string),
        dest: "library".into(),
        on_delete: OnDelete::Keep,
        all_files: false,
    };
    engine.add_watch(&spec).unwrap();
    let store = engine.store();
    let watch = store.watches().unwrap().remove(0);
    crate::scan::scan_watch(store, &watch, &|_| {}).unwrap();
    (home, engine)
}

/// After `pump()`, the pipeline is either done or waits for something
/// that will come (a worker's report or a settle deadline); otherwise its
/// driver would wait forever. Files that need no upload (identical
/// content, linked) are decided without any worker: a whole window of
/// them must not leave the pipeline waiting for nothing.
#[test]
fn a_window_of_files_needing_no_upload_does_not_stall_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("Photos");
    fs::create_dir(&photos).unwrap();
    for i in 0..100 {
        fs::write(photos.join(format!("IMG_{i:03}.jpg")), b"same content").unwrap();
    }
    let (home, engine) = scanned(dir.path(), photos, None);
    let store = engine.store();
    let watch = store.watches().unwrap().remove(0);
    let row = store.destination(watch.dest_id).unwrap();
    let dest = crate::dest::open(&home, &row).unwrap();
    dest.prepare().unwrap();
    let emit = |_: &Event| {};
    let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::ZERO));
    p.destinations_mut().opened(row.id, dest);
    p.configure([watch]);
    let done = p.done_channel();
    for _ in 0..10_000 {
        p.pump().unwrap();
        if p.is_drained() {
            break;
        }
        let outstanding =
            p.slots.values().filter(|s| s.hashed.is_none()).count() + p.in_flight.len();
        assert!(
            outstanding > 0 || p.next_deadline_ms().is_some(),
            "the pipeline is not done but waits for nothing: its driver would wait forever"
        );
        // Let every outstanding job report before deciding anything, so
        // a whole window becomes ready at once (a turn records every
        // report already in).
        while p.slots.values().any(|s| s.hashed.is_none()) || !p.in_flight.is_empty() {
            let report = done
                .recv_timeout(Duration::from_secs(60))
                .expect("a worker's report within a minute");
            p.handle(report).unwrap();
        }
    }
    assert!(p.is_drained());
    assert_eq!(p.report.uploaded, 1, "one copy of the content");
    assert_eq!(p.report.linked, 99, "the rest are linked to it");
}

/// A destination whose first commit succeeds but reports a failure, as
/// when the server's answer is lost.
struct LostAnswer {
    inner: Arc<dyn Destination>,
    lose: AtomicBool,
}

struct LostAnswerStaged(Box<dyn crate::dest::Staged>, bool);

impl crate::dest::Staged for LostAnswerStaged {
    fn commit(self: Box<Self>) -> Result<(), DestError> {
        self.0.commit()?;
        if self.1 {
            return Err(DestError::Http {
                name: "lossy".into(),
                what: "finish the upload".into(),
                status: 400,
                transient: false,
                retry_after: None,
            });
        }
        Ok(())
    }
}

impl Destination for LostAnswer {
    fn name(&self) -> &str {
        "lossy"
    }
    fn capabilities(&self) -> crate::dest::Capabilities {
        self.inner.capabilities()
    }
    fn reach(&self) -> Result<(), DestError> {
        self.inner.reach()
    }
    fn prepare(&self) -> Result<(), DestError> {
        self.inner.prepare()
    }
    fn exists(&self, album: &str, name: &str) -> Result<bool, DestError> {
        self.inner.exists(album, name)
    }
    fn read_back(
        &self,
        album: &str,
        name: &str,
        len: u64,
    ) -> Result<Option<crate::dest::ReadBack>, DestError> {
        self.inner.read_back(album, name, len)
    }
    fn stage(
        &self,
        upload: &Upload<'_>,
        source: &mut (dyn Read + Send),
    ) -> Result<(Box<dyn crate::dest::Staged>, u64), DestError> {
        let (staged, n) = self.inner.stage(upload, source)?;
        let lose = self.lose.swap(false, Ordering::Relaxed);
        Ok((Box::new(LostAnswerStaged(staged, lose)), n))
    }
    fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.inner.rename(from, to)
    }
    fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), DestError> {
        self.inner.copy(from, to)
    }
    fn delete(&self, album: &str, name: &str) -> Result<(), DestError> {
        self.inner.delete(album, name)
    }
}

fn drain(p: &mut Pipeline<'_>) {
    let done = p.done_channel();
    while !p.is_drained() {
        p.pump().unwrap();
        if p.in_flight() > 0 {
            let report = done
                .recv_timeout(Duration::from_secs(60))
                .expect("a worker's report within a minute");
            p.handle(report).unwrap();
        }
    }
}

/// An upload that completed but was reported failed must not leave a
/// complete copy under one name and the retry under a second one.
#[test]
fn a_lost_commit_answer_is_retried_under_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("Photos");
    fs::create_dir(&photos).unwrap();
    fs::write(photos.join("IMG.jpg"), b"the photo").unwrap();
    let (home, engine) = scanned(dir.path(), photos, Some("Album"));
    let store = engine.store();
    let watch = store.watches().unwrap().remove(0);
    let row = store.destination(watch.dest_id).unwrap();
    let library = crate::dest::open(&home, &row).unwrap();
    library.prepare().unwrap();
    let lossy: Arc<dyn Destination> = Arc::new(LostAnswer {
        inner: library.clone(),
        lose: AtomicBool::new(true),
    });
    let emit = |_: &Event| {};
    // First pass: the upload lands, but its answer is lost.
    let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::ZERO));
    p.destinations_mut().opened(row.id, lossy);
    p.configure([watch.clone()]);
    drain(&mut p);
    assert_eq!(p.report.uploaded, 0, "the pass saw the upload fail");
    drop(p);
    // Next pass: the retry goes to the very same name.
    crate::deletion::forget_unconfirmed(store, library.as_ref(), row.id, &Default::default())
        .unwrap();
    let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::ZERO));
    p.destinations_mut().opened(row.id, library);
    p.configure([watch]);
    drain(&mut p);
    // The complete copy is adopted (it holds exactly this content), or
    // uploaded again over itself: either way one file, sent at most once more.
    assert_eq!(p.report.uploaded + p.report.linked, 1, "{:?}", p.report);
    let album: Vec<String> = fs::read_dir(home.library_dir().join("Album"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        album,
        vec!["IMG.jpg".to_string()],
        "one copy, under its own name"
    );
}

/// Where the file system keeps change times (the temporary folder here is
/// on ext4 or tmpfs), a file is read one settle window after its last
/// change, however late a scan first saw it; a file changed within the
/// window still waits.
#[test]
fn a_file_settles_one_window_after_its_change_time_not_after_its_sighting() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("Photos");
    fs::create_dir(&photos).unwrap();
    fs::write(photos.join("IMG.jpg"), b"the photo").unwrap();
    assert!(
        crate::platform::keeps_change_times(&photos),
        "this test needs a local file system that keeps change times"
    );
    let (home, engine) = scanned(dir.path(), photos.clone(), Some("Album"));
    let store = engine.store();
    // As if the scan had first seen the file an hour from now: only its
    // change time can make it ready.
    store
        .exec(
            "UPDATE files SET fp_since_ms = ?1",
            [crate::store::now_ms() + 3_600_000],
        )
        .unwrap();
    let meta = fs::symlink_metadata(photos.join("IMG.jpg")).unwrap();
    let changed_ms = crate::platform::Fingerprint::of(&meta).ctime_ns / 1_000_000;
    let watch = store.watches().unwrap().remove(0);
    let row = store.destination(watch.dest_id).unwrap();
    let library = crate::dest::open(&home, &row).unwrap();
    library.prepare().unwrap();
    let emit = |_: &Event| {};

    // Changed well within a one-minute window: it waits.
    let mut p = Pipeline::new(store, &emit, 1, SettleRule::new(Duration::from_secs(60)));
    p.destinations_mut().opened(row.id, library.clone());
    p.configure([watch.clone()]);
    p.pump().unwrap();
    assert_eq!(p.settling_count(), 1, "changed within the window");
    assert!(
        p.next_deadline_ms().unwrap() <= changed_ms + 60_000,
        "it waits for its change time plus the window, not for its sighting"
    );
    drop(p);

    // A 20 ms window, once the change is 20 ms old: ready at the first look.
    let window = 20;
    let wait = changed_ms + window - crate::store::now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64)); // the window itself
    }
    let mut p = Pipeline::new(
        store,
        &emit,
        1,
        SettleRule::new(Duration::from_millis(window as u64)),
    );
    p.destinations_mut().opened(row.id, library);
    p.configure([watch]);
    p.pump().unwrap();
    assert_eq!(
        p.settling_count(),
        0,
        "still for a window since its change, yet held until {:?}",
        p.next_deadline_ms()
    );
    drain(&mut p);
    assert_eq!(p.report.uploaded, 1, "{:?}", p.report);
}
