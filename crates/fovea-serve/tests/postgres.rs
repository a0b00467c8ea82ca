//! People in PostgreSQL, shared by two servers: a real server in a temporary data folder
//! (`initdb`, `pg_ctl`; Debian's `postgresql`), never a mock. Without PostgreSQL the tests
//! say so and pass, unless FOVEA_REQUIRE_CLIENTS is set (as `.ci/run` sets it).

mod common;

use common::*;
use fovea_serve::{IdentityStore, PostgresStore, ServeConfig};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A PostgreSQL server of this test's own, stopped when dropped.
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// The folder of PostgreSQL's server programs: on PATH, else Debian's.
fn postgres_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("pg_ctl").is_file());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("pg_ctl").is_file()).collect())
        .unwrap_or_default();
    debian.sort();
    on_path.or(debian.pop())
}

impl Postgres {
    fn start() -> Option<Postgres> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var_os("FOVEA_REQUIRE_CLIENTS").is_none(),
                "no PostgreSQL server programs: apt-get install postgresql"
            );
            eprintln!("skipped: no PostgreSQL (apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Postgres { dir, bin, port };
        // PostgreSQL refuses to run as root: as root, its own user runs it
        if unsafe { libc::geteuid() } == 0 {
            let out = Command::new("chown").args(["-R", "postgres:postgres"]).arg(pg.dir.path()).output().unwrap();
            assert!(out.status.success(), "chown: {}", String::from_utf8_lossy(&out.stderr));
        }
        let data = pg.dir.path().join("data");
        pg.run("initdb", &["-D", data.to_str().unwrap(), "--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        pg.pg_ctl("start");
        Some(pg)
    }

    /// `pg_ctl start`, `stop` or `restart` (waiting for it).
    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("log");
        let args =
            ["-D", data.to_str().unwrap(), "-o", &options, "-l", log.to_str().unwrap(), "-m", "fast", "-w", action];
        self.run("pg_ctl", &args);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let out = if unsafe { libc::geteuid() } == 0 {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output().unwrap()
        } else {
            Command::new(&program).args(args).output().unwrap()
        };
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.pg_ctl("stop");
    }
}

/// The names `server` recognises in the group photo, once they equal `expected` (another
/// server's change reaches this one by NOTIFY, a moment later).
fn recognised_soon(server: &Server, expected: &[&str]) {
    let start = Instant::now();
    loop {
        let (status, answer) = post(server, "/v1/vision/face/recognize", &[Part::File("image", "s1.jpg", sample(1))]);
        assert_eq!(status, 200, "{answer}");
        let names: Vec<&str> =
            answer["predictions"].as_array().unwrap().iter().map(|p| p["userid"].as_str().unwrap()).collect();
        if names == expected {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "still {names:?}, not {expected:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_servers_share_one_postgres_store() {
    let Some(pg) = Postgres::start() else { return };
    let config = ServeConfig { db: pg.url(), ..ServeConfig::default() };
    let (a, b) = (Server::start(&config), Server::start(&config));
    recognised_soon(&b, &["unknown", "unknown", "unknown"]);
    // enrolled through a, recognised by b
    let (s, answer) =
        post(&a, "/v1/vision/face/register", &[Part::Text("userid", "alice"), Part::File("image", "a.png", alice())]);
    assert_eq!((s, &answer["message"]), (200, &serde_json::json!("face added")), "{answer}");
    recognised_soon(&b, &["alice", "unknown", "unknown"]);
    // many clients of both servers at once, for the same and different people: none lost
    let (alice, bob) = (alice(), bob());
    std::thread::scope(|scope| {
        for i in 0..8 {
            let (server, picture, name) = match i % 4 {
                0 => (&a, &alice, "alice"),
                1 => (&b, &alice, "alice"),
                2 => (&a, &bob, "bob"),
                _ => (&b, &bob, "bob"),
            };
            scope.spawn(move || {
                let (s, answer) = post(
                    server,
                    "/v1/vision/face/register",
                    &[Part::Text("userid", name), Part::File("image", "p.png", picture.clone())],
                );
                assert_eq!(s, 200, "{answer}");
            });
        }
    });
    let people: Vec<(String, usize)> =
        a.service.people().store().people().unwrap().into_iter().map(|p| (p.name, p.descriptors)).collect();
    assert_eq!(people, [("alice".to_string(), 5), ("bob".to_string(), 4)]);
    recognised_soon(&a, &["alice", "bob", "unknown"]);
    recognised_soon(&b, &["alice", "bob", "unknown"]);
    // removed through b, forgotten by a
    let (s, _) = post(&b, "/v1/vision/face/delete", &[Part::Text("userid", "alice")]);
    assert_eq!(s, 200);
    recognised_soon(&a, &["unknown", "bob", "unknown"]);

    // PostgreSQL restarts under both servers: their connections are made anew (the call
    // that meets a lost one fails), and b hears of a's change again
    pg.pg_ctl("restart");
    let register = || {
        post(
            &a,
            "/v1/vision/face/register",
            &[Part::Text("userid", "alice"), Part::File("image", "a.png", alice.clone())],
        )
    };
    let (mut s, mut answer) = register();
    for _ in 0..3 {
        if s == 200 {
            break;
        }
        assert_eq!(s, 500, "{answer}");
        std::thread::sleep(Duration::from_millis(200));
        (s, answer) = register();
    }
    assert_eq!(s, 200, "{answer}");
    recognised_soon(&b, &["alice", "bob", "unknown"]);
}

#[test]
fn a_postgres_enrolment_is_all_or_nothing() {
    let Some(pg) = Postgres::start() else { return };
    let store = PostgresStore::connect(&pg.url()).unwrap();
    let face = vec![0.1f32; 128];
    assert!(store.enroll("carol", &[(face.clone(), "one.png".into())]).unwrap());
    // the second descriptor's source holds a NUL, which PostgreSQL refuses mid-transaction
    let err = store.enroll("carol", &[(face.clone(), "two.png".into()), (face.clone(), "bad\0.png".into())]);
    assert!(err.is_err());
    let err = store.enroll("dave", &[(face.clone(), "bad\0.png".into())]).unwrap_err().to_string();
    assert!(err.contains("PostgreSQL face database postgres://postgres@127.0.0.1"), "{err}");
    let people: Vec<(String, usize)> = store.people().unwrap().into_iter().map(|p| (p.name, p.descriptors)).collect();
    assert_eq!(people, [("carol".to_string(), 1)]);
    // a URL that is not one, and a server that is not there, are named
    let err = PostgresStore::connect("postgres://nobody@127.0.0.1:1/none").err().unwrap().to_string();
    assert!(err.contains("postgres://nobody@127.0.0.1:1/none"), "{err}");
}
