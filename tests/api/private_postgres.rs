//! A throwaway PostgreSQL server of a test's own: initdb in a temporary folder, a free port,
//! its unix socket in that folder. Stopping it or reconfiguring it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn run_as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    // initdb and pg_ctl refuse to run as root.
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running a PostgreSQL tool")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Hands `path` to the `postgres` user when the tests run as root: the server runs as
/// `postgres` and must own its data folder.
fn give_to_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown -R postgres {}", path.display());
    }
}

impl PrivatePostgres {
    fn bin_dir() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        versions.sort();
        versions.pop()
    }

    /// Starts a fresh server with initdb's configuration (trust authentication). `None`
    /// when the server binaries are not installed, unless `TESSERA_REQUIRE_POSTGRES=1`
    /// says CI must run the test.
    pub fn start() -> Option<Self> {
        Self::start_with(|_| {})
    }

    /// Like [`PrivatePostgres::start`], with `configure` run on the data folder after
    /// initdb and before the first start (to add `postgresql.conf` settings, replace
    /// `pg_hba.conf`, drop in certificates).
    pub fn start_with(configure: impl FnOnce(&Path)) -> Option<Self> {
        let Some(bin) = Self::bin_dir() else {
            if std::env::var("TESSERA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("TESSERA_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries under /usr/lib/postgresql");
            }
            eprintln!("skipped: no PostgreSQL server binaries");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        give_to_postgres(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = run_as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        configure(&data);
        give_to_postgres(&data);
        let server = PrivatePostgres {
            bin,
            data,
            socket_dir: dir.path().to_path_buf(),
            port,
            _dir: dir,
        };
        server.up();
        Some(server)
    }

    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.socket_dir.display()
        );
        let log = self.data.join("server.log");
        let out = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn down(&self) {
        let out = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Over the unix socket, which initdb's `pg_hba.conf` trusts.
    pub fn socket_url(&self) -> String {
        format!(
            "postgres://postgres@/postgres?host={}&port={}",
            self.socket_dir.display(),
            self.port
        )
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
