//! A private PostgreSQL cluster that a test may stop and start (fault injection), built from the
//! binaries `scripts/with-postgres` names in `AGENTMESSAGE_TEST_POSTGRES_BIN`. Without that
//! variable the test fails: it never skips. The cluster is stopped when dropped, so a test that
//! panics leaves no server running.

use std::{path::PathBuf, process::Command};

/// A private PostgreSQL cluster that a test may stop and start.
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    as_root: bool,
}

impl Cluster {
    fn pg(&self, tool: &str, args: &[&str]) -> std::process::ExitStatus {
        let tool = self.bin.join(tool);
        let mut command = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(tool);
            c
        } else {
            Command::new(tool)
        };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run a PostgreSQL tool")
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        let log = self.data.join("log");
        assert!(self
            .pg(
                "pg_ctl",
                &[
                    "-D",
                    self.data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-o",
                    &options,
                    "start"
                ]
            )
            .success());
    }

    pub fn stop(&self) {
        assert!(self
            .pg(
                "pg_ctl",
                &[
                    "-D",
                    self.data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop"
                ]
            )
            .success());
    }

    /// A new cluster, started.
    pub fn create() -> (Cluster, tempfile::TempDir) {
        let bin = std::env::var("AGENTMESSAGE_TEST_POSTGRES_BIN").expect(
            "AGENTMESSAGE_TEST_POSTGRES_BIN names PostgreSQL's programs: run the tests with scripts/test (or under scripts/with-postgres)",
        );
        let dir = tempfile::tempdir().unwrap();
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if as_root {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin: bin.into(),
            data: dir.path().join("data"),
            port,
            as_root,
        };
        assert!(cluster
            .pg(
                "initdb",
                &[
                    "-D",
                    cluster.data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres"
                ]
            )
            .success());
        cluster.start();
        (cluster, dir)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Already stopped by the test, or stopped here: either way nothing stays running.
        let _ = self.pg(
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}
