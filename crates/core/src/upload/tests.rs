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
        // a whole window becomes ready at once.
        for _ in 0..outstanding {
            p.handle(done.recv().unwrap()).unwrap();
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
            p.handle(done.recv().unwrap()).unwrap();
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
