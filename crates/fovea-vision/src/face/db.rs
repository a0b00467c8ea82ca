//! A face database in SQLite: people, their enrolled descriptors, where each came from and
//! when. One-shot recognition: the nearest enrolled descriptor within a threshold names
//! the face. WAL mode and immediate transactions let several processes enrol at once.

use super::{Face, Pipeline};

/// A face and the enrolled person nearest to it within the threshold, if any: what
/// `fovea faces identify --json` prints for each face.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IdentifiedFace {
    /// The face: box, score, landmarks, descriptor.
    #[serde(flatten)]
    pub face: Face,
    /// The nearest enrolled person's name.
    pub name: Option<String>,
    /// The descriptor distance to them.
    pub distance: Option<f64>,
}

impl IdentifiedFace {
    /// The name, or "not recognized".
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("not recognized")
    }
}
use fovea::{Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

const FORMAT: &str = "fovea-faces 1";

/// A face database: a SQLite file of people and their enrolled 128-D descriptors.
pub struct FaceDb {
    conn: Connection,
    path: PathBuf,
}

/// A person in the database and how many descriptors they have.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Person {
    /// the person's name, unique in the database
    pub name: String,
    /// number of enrolled descriptors
    pub descriptors: usize,
}

fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ReadOnly) => Error::format(path, READ_ONLY),
        _ => Error::format(path, format!("face database: {e}")),
    }
}

const READ_ONLY: &str = "the face database is read-only here (its file or its folder cannot be written)";

/// Refuses a SQLite database that is not one of fovea's face databases (an empty one,
/// about to be made one, passes).
fn check_format(conn: &Connection, path: &Path) -> Result<()> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| first_read_error(path, e))?;
    if tables.is_empty() {
        return Ok(());
    }
    let format: Option<String> = if tables.iter().any(|t| t == "meta") {
        conn.query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| r.get(0))
            .optional()
            .map_err(|e| db_error(path, e))?
    } else {
        None
    };
    if format.as_deref() != Some(FORMAT) {
        return Err(Error::format(path, "is a SQLite database, but not one of fovea's face databases"));
    }
    // a face database with a table gone is damaged, not new: it is not silently remade
    if let Some(missing) = ["people", "descriptors"].iter().find(|t| !tables.iter().any(|n| n == *t)) {
        return Err(Error::format(path, format!("is a damaged face database: its {missing} table is missing")));
    }
    Ok(())
}

/// `e` from reading the tables that tell a face database: a file that is not SQLite is
/// "not a face database"; anything else (a locked or unreadable file) says what it is.
fn first_read_error(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::format(path, "not a face database (not a SQLite file)"),
        _ => db_error(path, e),
    }
}

impl FaceDb {
    /// Opens (or creates) the database at `path` for reading and writing. A file that is
    /// not SQLite, or a SQLite database of something else, is refused; so is a read-only
    /// one (use [`FaceDb::open_read_only`] to read it).
    pub fn open(path: &Path) -> Result<FaceDb> {
        if path.exists() && !path.is_file() {
            return Err(Error::format(path, "not a regular file"));
        }
        fovea::io::note_input(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| db_error(path, e))?;
        let err = |e| db_error(path, e);
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        check_format(&conn, path)?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
            return Err(Error::format(path, READ_ONLY));
        }
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT OR IGNORE INTO meta VALUES ('format', 'fovea-faces 1');
             CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
             CREATE TABLE IF NOT EXISTS descriptors (
                 id INTEGER PRIMARY KEY,
                 person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                 descriptor BLOB NOT NULL,
                 source TEXT NOT NULL,
                 added TEXT NOT NULL DEFAULT (datetime('now')));
             COMMIT;",
        )
        .map_err(err)?;
        Ok(FaceDb { conn, path: path.to_path_buf() })
    }

    /// Opens an existing database at `path` for reading only: it works on a read-only file
    /// and in a read-only folder, where SQLite cannot make the files a WAL database reads
    /// through (the database is then read as it is on disk).
    pub fn open_read_only(path: &Path) -> Result<FaceDb> {
        if !path.is_file() {
            return Err(Error::format(path, "no face database here (enrol someone first)"));
        }
        fovea::io::note_input(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        // the first read opens the file (SQLite opens lazily) and counts its tables
        let open = |uri: String| -> rusqlite::Result<(Connection, i64)> {
            let conn = Connection::open_with_flags(uri, flags)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            let tables = conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
            Ok((conn, tables))
        };
        // an absolute path, so that the URI never starts with `//` (a host name)
        let absolute = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let plain = absolute.to_string_lossy().replace('%', "%25").replace('?', "%3f").replace('#', "%23");
        // only where SQLite cannot make a WAL database's side files: read the file as it is
        let (conn, tables) = match open(format!("file:{plain}")) {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
                ) =>
            {
                open(format!("file:{plain}?immutable=1"))
            }
            opened => opened,
        }
        .map_err(|e| first_read_error(path, e))?;
        if tables == 0 {
            return Err(Error::format(path, "no face database here (an empty file; enrol someone first)"));
        }
        check_format(&conn, path)?;
        Ok(FaceDb { conn, path: path.to_path_buf() })
    }

    /// Adds descriptors of `name` (creating the person), each with the picture it was taken
    /// from, in one transaction: all of them or, if anything fails (or the process is
    /// killed), none. Returns whether the person is new.
    pub fn enroll(&mut self, name: &str, faces: &[(&[f32], &str)]) -> Result<bool> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("a person needs a name".into()));
        }
        if let Some((d, source)) = faces.iter().find(|(d, _)| d.len() != 128) {
            return Err(Error::Invalid(format!("a face descriptor has 128 values, not {} ({source})", d.len())));
        }
        let path = self.path.clone();
        let err = |e| db_error(&path, e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let new = tx.execute("INSERT OR IGNORE INTO people (name) VALUES (?1)", params![name]).map_err(err)? == 1;
        let id: i64 =
            tx.query_row("SELECT id FROM people WHERE name = ?1", params![name], |r| r.get(0)).map_err(err)?;
        for (descriptor, source) in faces {
            let blob: Vec<u8> = descriptor.iter().flat_map(|v| v.to_le_bytes()).collect();
            tx.execute(
                "INSERT INTO descriptors (person, descriptor, source) VALUES (?1, ?2, ?3)",
                params![id, blob, source],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(new)
    }
    /// Enrols `name` from the first face (in face-api's order) of each picture of
    /// `pictures`, found by `pipeline` (which must reach [`super::Stage::Embed`]) above
    /// `min_score`: all pictures in one transaction, and none if one has no face. Returns
    /// how many were enrolled.
    pub fn enroll_pictures(
        &mut self,
        pipeline: &Pipeline,
        name: &str,
        pictures: &[PathBuf],
        min_score: f64,
    ) -> Result<usize> {
        let mut descriptors = Vec::new();
        for path in pictures {
            let faces = pipeline.run(&crate::image::load_rgb(path)?, min_score)?;
            let face = faces
                .into_iter()
                .next()
                .ok_or_else(|| Error::format(path, format!("no face found scoring above {min_score}")))?;
            descriptors.push((face.descriptor, path.display().to_string()));
        }
        let faces: Vec<(&[f32], &str)> = descriptors.iter().map(|(d, s)| (d.as_slice(), s.as_str())).collect();
        self.enroll(name, &faces)?;
        Ok(faces.len())
    }

    /// The faces of a `[3, H, W]` picture found by `pipeline` above `min_score`, each with
    /// the enrolled person nearest to it within `threshold` (name, distance), if any.
    pub fn identify_faces(
        &self,
        pipeline: &Pipeline,
        rgb: &fovea::Tensor,
        min_score: f64,
        threshold: f64,
    ) -> Result<Vec<IdentifiedFace>> {
        let faces = pipeline.run(rgb, min_score)?;
        faces
            .into_iter()
            .map(|face| {
                let (name, distance) = self.identify(&face.descriptor, threshold)?.unzip();
                Ok(IdentifiedFace { face, name, distance })
            })
            .collect()
    }

    /// The enrolled person nearest to `descriptor` and the distance, if within `threshold`.
    pub fn identify(&self, descriptor: &[f32], threshold: f64) -> Result<Option<(String, f64)>> {
        let mut best: Option<(String, f64)> = None;
        for (name, enrolled) in self.descriptors()? {
            let d = super::distance(descriptor, &enrolled);
            if best.as_ref().is_none_or(|(_, b)| d < *b) {
                best = Some((name, d));
            }
        }
        Ok(best.filter(|(_, d)| *d < threshold))
    }

    /// Every enrolled descriptor with its person's name, each checked: 128 finite values.
    pub fn descriptors(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let err = |e| db_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare("SELECT people.name, descriptors.descriptor FROM descriptors JOIN people ON people.id = descriptors.person")
            .map_err(err)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(err)?;
        let mut all = Vec::new();
        for row in rows {
            let (name, blob) = row.map_err(err)?;
            if blob.len() != 4 * 128 {
                return Err(Error::format(&self.path, format!("a descriptor of {name} has {} bytes", blob.len())));
            }
            let enrolled: Vec<f32> =
                blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if enrolled.iter().any(|v| !v.is_finite()) {
                return Err(Error::format(&self.path, format!("a descriptor of {name} holds NaN or infinite values")));
            }
            all.push((name, enrolled));
        }
        Ok(all)
    }

    /// A number that changes when another connection (another process, or the CLI)
    /// commits a change to the database; SQLite's `PRAGMA data_version`. A long-lived reader
    /// that caches [`FaceDb::descriptors`] reloads them when it changes.
    pub fn data_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| db_error(&self.path, e))
    }

    /// Writes a consistent copy of the database to the new file `to` (SQLite's `VACUUM
    /// INTO`: the people and descriptors as of one moment, while others keep writing).
    pub fn backup_to(&self, to: &Path) -> Result<()> {
        if to.exists() {
            return Err(Error::format(to, "already exists: a backup is written to a new file"));
        }
        let target = to.to_str().ok_or_else(|| Error::format(to, "not a UTF-8 path"))?;
        self.conn.execute("VACUUM INTO ?1", params![target]).map_err(|e| db_error(to, e))?;
        Ok(())
    }

    /// Everyone enrolled, by name.
    pub fn list(&self) -> Result<Vec<Person>> {
        let err = |e| db_error(&self.path, e);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT people.name, COUNT(descriptors.id) FROM people LEFT JOIN descriptors \
                 ON descriptors.person = people.id GROUP BY people.id ORDER BY people.name",
            )
            .map_err(err)?;
        let rows = stmt.query_map([], |r| Ok(Person { name: r.get(0)?, descriptors: r.get::<_, i64>(1)? as usize }));
        rows.and_then(|r| r.collect()).map_err(err)
    }

    /// Removes a person and their descriptors; false if there was no such person.
    pub fn remove(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM people WHERE name = ?1", params![name])
            .map_err(|e| db_error(&self.path, e))?;
        Ok(n > 0)
    }
}
