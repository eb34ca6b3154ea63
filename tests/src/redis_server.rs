//! Private `redis-server` processes for fault and cluster tests: each on a port of its own, in
//! a temporary directory of its own, killed when dropped. The shared Redis (6379) is never
//! touched. A missing `redis-server` binary fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One private redis-server process.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

fn binary(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed: install the redis-server package (apt-get install redis-server); these tests need it")
    })
}

impl RedisServer {
    /// Starts `redis-server` on `port` in `dir` with the extra `redis.conf` directives given
    /// as arguments (e.g. `["--appendonly", "yes"]`), and waits until it answers PING.
    pub fn start(port: u16, dir: &Path, extra: &[&str]) -> RedisServer {
        let mut s = RedisServer {
            port,
            dir: dir.to_path_buf(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        s.restart();
        s
    }

    fn spawn(&self) -> std::process::Child {
        Command::new(binary("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server")
    }

    /// (Re)starts the process with the same port, directory and configuration.
    pub fn restart(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("redis dir");
        let mut child = self.spawn();
        let mut respawns = 0;
        // A restart replays the append-only file first (PING answers LOADING meanwhile); on
        // a loaded 2-core machine that can take seconds. A server that exits at once (the
        // port not free yet after a kill -9) is started again.
        for _ in 0..2400 {
            if self.cli(&["PING"]).is_ok_and(|o| o.trim() == "PONG") {
                self.child = Some(child);
                return;
            }
            if respawns < 40 && child.try_wait().is_ok_and(|s| s.is_some()) {
                respawns += 1;
                std::thread::sleep(Duration::from_millis(250));
                child = self.spawn();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!(
            "redis-server on port {} did not start ({respawns} respawns); the end of its log:\n{}",
            self.port,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli -p PORT args…` and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli(self.port, args)
    }
}

/// Runs `redis-cli -p PORT args…`; `Err` with its output when it fails.
pub fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new(binary("redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && !text.starts_with("ERR") && !text.contains("Could not connect") {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A 3-master Redis Cluster on loopback (no replicas).
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts one node per port (cluster bus on port + 10000) and joins them with
    /// `redis-cli --cluster create`; returns once every node reports `cluster_state:ok`.
    pub fn start(ports: &[u16]) -> RedisCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<RedisServer> = ports
            .iter()
            .map(|p| {
                RedisServer::start(
                    *p,
                    &dir.path().join(p.to_string()),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--appendonly",
                        "no",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new(binary("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for n in &nodes {
            let mut ok = false;
            for _ in 0..400 {
                if n.cli(&["CLUSTER", "INFO"])
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
                {
                    ok = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            assert!(ok, "cluster node {} never reached cluster_state:ok", n.port);
        }
        RedisCluster { nodes, _dir: dir }
    }

    /// The service's URL for this cluster: `redis+cluster://h1:p1,h2:p2,…`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}
