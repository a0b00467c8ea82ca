//! Where enrolled people live, and the in-memory index that recognition reads.
//!
//! A store is a database of people and their descriptors: SQLite (the file that `fovea
//! faces enroll` writes) or PostgreSQL (shared by several servers). Recognition never
//! queries it per face: [`People`] keeps every descriptor in memory and reloads them when
//! the store's version says that anyone, this process or another, changed it.

use fovea::Result;
use fovea_vision::face::{FaceDb, Person};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A database of enrolled people. Calls block; the server makes them off its async threads.
pub trait IdentityStore: Send + Sync {
    /// Adds descriptors of `name` (creating the person), each with the picture it came
    /// from, in one transaction: all or none. Returns whether the person is new.
    fn enroll(&self, name: &str, faces: &[(Vec<f32>, String)]) -> Result<bool>;
    /// Removes a person and their descriptors; false if there was no such person.
    fn remove(&self, name: &str) -> Result<bool>;
    /// Everyone enrolled, by name.
    fn people(&self) -> Result<Vec<Person>>;
    /// Every descriptor with its person's name.
    fn descriptors(&self) -> Result<Vec<(String, Vec<f32>)>>;
    /// A number that changes whenever the store changes, by this process or another.
    fn version(&self) -> Result<u64>;
    /// What it is, for logs: `SQLite people.db`.
    fn describe(&self) -> String;
    /// What kind it is, naming no file or host: `SQLite`, `PostgreSQL`.
    fn kind(&self) -> &'static str;
    /// Writes a consistent copy of the store to the new file `to`, a SQLite face database.
    fn backup(&self, to: &std::path::Path) -> Result<()>;
}

/// A SQLite face database (the CLI's): one connection, its calls one at a time.
pub struct SqliteStore {
    db: Mutex<FaceDb>,
    /// this connection's own commits, which SQLite's data_version does not count
    writes: AtomicU64,
    path: std::path::PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) the face database at `path`.
    pub fn open(path: &std::path::Path) -> Result<SqliteStore> {
        Ok(SqliteStore { db: Mutex::new(FaceDb::open(path)?), writes: AtomicU64::new(0), path: path.to_path_buf() })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, FaceDb> {
        // a panic while holding it left no half-done transaction behind (SQLite rolls back)
        self.db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl IdentityStore for SqliteStore {
    fn enroll(&self, name: &str, faces: &[(Vec<f32>, String)]) -> Result<bool> {
        let faces: Vec<(&[f32], &str)> = faces.iter().map(|(d, s)| (d.as_slice(), s.as_str())).collect();
        let new = self.db().enroll(name, &faces)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(new)
    }

    fn remove(&self, name: &str) -> Result<bool> {
        let removed = self.db().remove(name)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(removed)
    }

    fn people(&self) -> Result<Vec<Person>> {
        self.db().list()
    }

    fn descriptors(&self) -> Result<Vec<(String, Vec<f32>)>> {
        self.db().descriptors()
    }

    fn version(&self) -> Result<u64> {
        let db = self.db();
        Ok((db.data_version()? as u64) << 32 | (self.writes.load(Ordering::SeqCst) & 0xffff_ffff))
    }

    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }

    fn kind(&self) -> &'static str {
        "SQLite"
    }

    fn backup(&self, to: &std::path::Path) -> Result<()> {
        self.db().backup_to(to)
    }
}

/// The people a server recognises: a store, and its descriptors cached in memory.
pub struct People {
    store: Box<dyn IdentityStore>,
    cache: RwLock<Cache>,
}

struct Cache {
    version: Option<u64>,
    descriptors: Arc<Vec<(String, Vec<f32>)>>,
}

/// The enrolled descriptors at one moment (see [`People::index`]).
pub struct Index(Arc<Vec<(String, Vec<f32>)>>);

impl Index {
    /// The enrolled person nearest to `descriptor` and the distance, if anyone is enrolled.
    pub fn nearest(&self, descriptor: &[f32]) -> Option<(&str, f64)> {
        let mut best: Option<(&str, f64)> = None;
        for (name, enrolled) in self.0.iter() {
            let d = fovea_vision::face::distance(descriptor, enrolled);
            if best.is_none_or(|(_, b)| d < b) {
                best = Some((name, d));
            }
        }
        best
    }
}

impl People {
    /// `store`, its descriptors loaded on first use.
    pub fn new(store: Box<dyn IdentityStore>) -> People {
        People { store, cache: RwLock::new(Cache { version: None, descriptors: Arc::new(Vec::new()) }) }
    }

    /// The store itself, for enrolling, removing and listing.
    pub fn store(&self) -> &dyn IdentityStore {
        &*self.store
    }

    /// Every enrolled descriptor as of now, for one request's faces: reloaded first if the
    /// store changed since they were read.
    pub fn index(&self) -> Result<Index> {
        self.refresh()?;
        Ok(Index(self.cache.read().unwrap_or_else(|p| p.into_inner()).descriptors.clone()))
    }

    /// Reloads the descriptors if the store changed since they were read.
    fn refresh(&self) -> Result<()> {
        let version = self.store.version()?;
        if self.cache.read().unwrap_or_else(|p| p.into_inner()).version == Some(version) {
            return Ok(());
        }
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        // read the version before the descriptors: a change in between makes the next call reload
        let version = self.store.version()?;
        if cache.version != Some(version) {
            cache.descriptors = Arc::new(self.store.descriptors()?);
            cache.version = Some(version);
        }
        Ok(())
    }
}
