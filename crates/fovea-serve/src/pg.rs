//! A face database in PostgreSQL, shared by several servers on several machines: each
//! caches the descriptors in memory ([`crate::People`]) and reloads them when another
//! changes them, told by `LISTEN/NOTIFY` on the channel `fovea_faces`.

use crate::IdentityStore;
use fovea::{Error, Result};
use fovea_vision::face::Person;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHANNEL: &str = "fovea_faces";

/// People in PostgreSQL: the tables `fovea_people` and `fovea_descriptors`.
pub struct PostgresStore {
    client: Mutex<Client>,
    config: postgres::Config,
    changes: Arc<Changes>,
    /// the URL without its password, for messages
    shown: String,
}

/// What the listener thread shares with the store.
struct Changes {
    /// bumped by every notification and by this process's own writes
    version: AtomicU64,
    /// whether the listener is connected and listening; if not, every read reloads
    listening: AtomicBool,
    /// set when the store is dropped: the listener stops
    closed: AtomicBool,
}

fn pg_error(shown: &str, e: postgres::Error) -> Error {
    // the error's own text is often only "db error"; the server's message says what
    let why = match (e.as_db_error(), std::error::Error::source(&e)) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    };
    Error::Invalid(format!("PostgreSQL face database {shown}: {why}"))
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`),
    /// makes the tables if they are missing, and starts listening for changes.
    pub fn connect(url: &str) -> Result<PostgresStore> {
        let config: postgres::Config =
            url.parse().map_err(|e| Error::setting("db", format!("not a PostgreSQL URL ({e})")))?;
        let shown = shown_url(url);
        let mut config = config;
        // a server gone without a word (a cable, a crash) is noticed within a minute
        config.connect_timeout(Duration::from_secs(10)).keepalives_idle(Duration::from_secs(30));
        let mut client = config.connect(NoTls).map_err(|e| pg_error(&shown, e))?;
        create_tables(&mut client).map_err(|e| pg_error(&shown, e))?;
        let changes = Arc::new(Changes {
            version: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let (listener_config, listener_changes, listener_shown) = (config.clone(), changes.clone(), shown.clone());
        std::thread::Builder::new()
            .name("fovea-pg-listen".into())
            .spawn(move || listen(listener_config, listener_changes, listener_shown))
            .map_err(|e| Error::Invalid(format!("cannot start the PostgreSQL listener: {e}")))?;
        Ok(PostgresStore { client: Mutex::new(client), config, changes, shown })
    }

    /// The connection, made anew if the old one was lost (a restarted server): the call
    /// that met the lost connection failed, the next ones work.
    fn client(&self) -> Result<std::sync::MutexGuard<'_, Client>> {
        let mut client = self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if client.is_closed() {
            *client = self.config.connect(NoTls).map_err(|e| pg_error(&self.shown, e))?;
        }
        Ok(client)
    }

    /// A read, tried once more on a new connection if the old one turns out lost (reads
    /// may be repeated; writes are not, as a lost commit may have happened).
    fn read<T>(&self, query: impl Fn(&mut Client) -> std::result::Result<T, postgres::Error>) -> Result<T> {
        let mut client = self.client()?;
        match query(&mut client) {
            Err(_) if client.is_closed() => {
                *client = self.config.connect(NoTls).map_err(|e| pg_error(&self.shown, e))?;
                query(&mut client).map_err(|e| pg_error(&self.shown, e))
            }
            answer => answer.map_err(|e| pg_error(&self.shown, e)),
        }
    }

    fn changed(&self) {
        self.changes.version.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.changes.closed.store(true, Ordering::SeqCst);
    }
}

/// `url` with its password replaced by `***`.
fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            match user.split_once(':') {
                Some((name, _)) => format!("{}{name}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The tables, made once by whichever server gets there first (an advisory lock keeps two
/// starting at once from racing).
fn create_tables(client: &mut Client) -> std::result::Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7406318);
         CREATE TABLE IF NOT EXISTS fovea_people (id BIGSERIAL PRIMARY KEY, name TEXT UNIQUE NOT NULL);
         CREATE TABLE IF NOT EXISTS fovea_descriptors (
             id BIGSERIAL PRIMARY KEY,
             person BIGINT NOT NULL REFERENCES fovea_people(id) ON DELETE CASCADE,
             descriptor REAL[] NOT NULL CHECK (cardinality(descriptor) = 128),
             source TEXT NOT NULL,
             added TIMESTAMPTZ NOT NULL DEFAULT now());
         CREATE INDEX IF NOT EXISTS fovea_descriptors_person ON fovea_descriptors (person);",
    )?;
    tx.commit()
}

/// The listener thread: LISTEN on its own connection, bump the version on every
/// notification; reconnect (reloading once) if the connection is lost.
fn listen(config: postgres::Config, changes: Arc<Changes>, shown: String) {
    while !changes.closed.load(Ordering::SeqCst) {
        let listening = config.connect(NoTls).and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            // whatever changed while no one listened is read again
            changes.version.fetch_add(1, Ordering::SeqCst);
            changes.listening.store(true, Ordering::SeqCst);
            let mut quiet = 0;
            while !changes.closed.load(Ordering::SeqCst) {
                // a new iterator each time: one whose timer has run out never waits again,
                // and a loop that never waits starves the connection's IO
                let notification = client.notifications().timeout_iter(Duration::from_millis(500)).next()?;
                match notification {
                    Some(_) => {
                        changes.version.fetch_add(1, Ordering::SeqCst);
                        quiet = 0;
                    }
                    // a lost connection also reads as silence: after 5 quiet seconds, ask
                    None if quiet == 10 => {
                        client.batch_execute("")?;
                        quiet = 0;
                    }
                    None => quiet += 1,
                }
            }
            Ok(())
        });
        changes.listening.store(false, Ordering::SeqCst);
        if changes.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = listening {
            eprintln!(
                "{}",
                serde_json::json!({"event": "postgres-listener", "db": shown, "error": e.to_string(), "retry_seconds": 1})
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl IdentityStore for PostgresStore {
    fn enroll(&self, name: &str, faces: &[(Vec<f32>, String)]) -> Result<bool> {
        if name.trim().is_empty() {
            return Err(Error::Invalid("a person needs a name".into()));
        }
        if let Some((d, source)) = faces.iter().find(|(d, _)| d.len() != 128) {
            return Err(Error::Invalid(format!("a face descriptor has 128 values, not {} ({source})", d.len())));
        }
        let err = |e| pg_error(&self.shown, e);
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(err)?;
        let inserted = tx
            .query_opt(
                "INSERT INTO fovea_people (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name],
            )
            .map_err(err)?;
        let new = inserted.is_some();
        let id: i64 = match inserted {
            Some(row) => row.get(0),
            None => tx.query_one("SELECT id FROM fovea_people WHERE name = $1", &[&name]).map_err(err)?.get(0),
        };
        for (descriptor, source) in faces {
            tx.execute(
                "INSERT INTO fovea_descriptors (person, descriptor, source) VALUES ($1, $2, $3)",
                &[&id, descriptor, source],
            )
            .map_err(err)?;
        }
        tx.batch_execute(&format!("NOTIFY {CHANNEL}")).map_err(err)?;
        tx.commit().map_err(err)?;
        self.changed();
        Ok(new)
    }

    fn remove(&self, name: &str) -> Result<bool> {
        let err = |e| pg_error(&self.shown, e);
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(err)?;
        let removed = tx.execute("DELETE FROM fovea_people WHERE name = $1", &[&name]).map_err(err)? > 0;
        tx.batch_execute(&format!("NOTIFY {CHANNEL}")).map_err(err)?;
        tx.commit().map_err(err)?;
        self.changed();
        Ok(removed)
    }

    fn people(&self) -> Result<Vec<Person>> {
        let rows = self.read(|client| {
            client.query(
                "SELECT p.name, COUNT(d.id) FROM fovea_people p LEFT JOIN fovea_descriptors d ON d.person = p.id \
                 GROUP BY p.id ORDER BY p.name COLLATE \"C\"",
                &[],
            )
        })?;
        Ok(rows.iter().map(|r| Person { name: r.get(0), descriptors: r.get::<_, i64>(1) as usize }).collect())
    }

    fn descriptors(&self) -> Result<Vec<(String, Vec<f32>)>> {
        let rows = self.read(|client| {
            client.query(
                "SELECT p.name, d.descriptor FROM fovea_descriptors d JOIN fovea_people p ON p.id = d.person",
                &[],
            )
        })?;
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            let (name, descriptor): (String, Vec<f32>) = (row.get(0), row.get(1));
            if descriptor.iter().any(|v| !v.is_finite()) {
                return Err(Error::Invalid(format!(
                    "PostgreSQL face database {}: a descriptor of {name} holds NaN or infinite values",
                    self.shown
                )));
            }
            all.push((name, descriptor));
        }
        Ok(all)
    }

    fn version(&self) -> Result<u64> {
        let version = self.changes.version.load(Ordering::SeqCst);
        if self.changes.listening.load(Ordering::SeqCst) {
            Ok(version)
        } else {
            // not told of changes now: every read reloads
            Ok(self.changes.version.fetch_add(1, Ordering::SeqCst) + 1)
        }
    }

    fn describe(&self) -> String {
        format!("PostgreSQL {}", self.shown)
    }

    fn kind(&self) -> &'static str {
        "PostgreSQL"
    }

    fn backup(&self, _to: &std::path::Path) -> Result<()> {
        Err(Error::setting("db", "a PostgreSQL face database is backed up with pg_dump, not through the server"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            super::shown_url("postgres://fovea:secret@db.local:5432/faces"),
            "postgres://fovea:***@db.local:5432/faces"
        );
        assert_eq!(super::shown_url("postgres://fovea@db.local/faces"), "postgres://fovea@db.local/faces");
        assert_eq!(super::shown_url("host=/tmp user=x"), "host=/tmp user=x");
    }
}
