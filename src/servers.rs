//! Starting private FerretDB and Mosquitto servers on free loopback ports: for the test harness, the
//! benchmarks and `autovolt demo`. This starts processes; it does not talk to them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const FERRETDB_VERSION: &str = "v1.24.2";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{what} is not installed ({hint}); run scripts/setup-servers.sh")]
    Missing { what: &'static str, hint: String },
    #[error("{what} could not be started: {reason}")]
    Start { what: &'static str, reason: String },
    #[error("{what} did not accept connections on {addr} within {secs} s; its output:\n{output}")]
    NotReady {
        what: &'static str,
        addr: SocketAddr,
        secs: u64,
        output: String,
    },
}

/// Where the FerretDB binary is: `AUTOVOLT_FERRETDB_BIN`, else the per-user cache that
/// scripts/setup-servers.sh builds into.
pub fn ferretdb_binary() -> PathBuf {
    if let Ok(p) = std::env::var("AUTOVOLT_FERRETDB_BIN") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache
        .join("autovolt")
        .join(format!("ferretdb-{FERRETDB_VERSION}"))
        .join("ferretdb")
}

/// Where the Mosquitto binary is: `AUTOVOLT_MOSQUITTO_BIN`, else Debian's, else the PATH.
pub fn mosquitto_binary() -> PathBuf {
    if let Ok(p) = std::env::var("AUTOVOLT_MOSQUITTO_BIN") {
        return PathBuf::from(p);
    }
    let debian = PathBuf::from("/usr/sbin/mosquitto");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("mosquitto")
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server process that is stopped (killed) when dropped.
pub struct ServerProcess {
    pub what: &'static str,
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
    args: Vec<String>,
    binary: PathBuf,
    remove_dir: bool,
}

impl ServerProcess {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The process id (benchmarks read its CPU time from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process (for outage tests); `restart` brings it back on the same port and data.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop();
        let child = spawn(self.what, &self.binary, &self.args, &self.dir)?;
        self.child = child;
        wait_ready(
            self.what,
            self.addr,
            &mut self.child,
            &self.dir,
            Duration::from_secs(30),
        )
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(
    what: &'static str,
    binary: &Path,
    args: &[String],
    dir: &Path,
) -> Result<Child, ServerError> {
    let log = std::fs::File::create(dir.join("server.log")).map_err(|e| ServerError::Start {
        what,
        reason: format!("cannot create its log in {}: {e}", dir.display()),
    })?;
    let log2 = log.try_clone().map_err(|e| ServerError::Start {
        what,
        reason: e.to_string(),
    })?;
    let mut command = Command::new(binary);
    die_with_parent(&mut command);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| ServerError::Start {
            what,
            reason: format!("{}: {e}", binary.display()),
        })
}

fn wait_ready(
    what: &'static str,
    addr: SocketAddr,
    child: &mut Child,
    dir: &Path,
    limit: Duration,
) -> Result<(), ServerError> {
    let start = Instant::now();
    let output = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ServerError::Start {
                what,
                reason: format!("it exited with {status}; its output:\n{}", output()),
            });
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ServerError::NotReady {
        what,
        addr,
        secs: limit.as_secs(),
        output: output(),
    })
}

/// Asks the kernel to kill the server when the thread that started it ends, so that a test binary or
/// a demo that is killed leaves no server behind. Start servers from a thread that lives as long as
/// they should.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Starts a process on a free port, retrying with a new port if the first one was taken meanwhile.
fn start_on_free_port(
    what: &'static str,
    binary: PathBuf,
    dir: PathBuf,
    remove_dir: bool,
    args_for: impl Fn(u16, &Path) -> Vec<String>,
) -> Result<ServerProcess, ServerError> {
    if !binary.exists() && binary.components().count() > 1 {
        return Err(ServerError::Missing {
            what,
            hint: format!("no file at {}", binary.display()),
        });
    }
    let mut last = None;
    for _ in 0..3 {
        let port = free_port().map_err(|e| ServerError::Start {
            what,
            reason: format!("no free port: {e}"),
        })?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let args = args_for(port, &dir);
        let mut child = spawn(what, &binary, &args, &dir)?;
        match wait_ready(what, addr, &mut child, &dir, Duration::from_secs(30)) {
            Ok(()) => {
                return Ok(ServerProcess {
                    what,
                    addr,
                    child,
                    dir,
                    args,
                    binary,
                    remove_dir,
                })
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(ServerError::Start {
        what,
        reason: "unknown".into(),
    }))
}

/// Starts FerretDB with the SQLite backend keeping its data in `data_dir` (created if needed).
/// `temporary` removes the directory when the server is dropped.
pub fn start_ferretdb(data_dir: &Path, temporary: bool) -> Result<ServerProcess, ServerError> {
    start_ferretdb_with(data_dir, temporary, &[])
}

/// [`start_ferretdb`] with more arguments (authentication: `--test-enable-new-auth`,
/// `--setup-username`, …).
pub fn start_ferretdb_with(
    data_dir: &Path,
    temporary: bool,
    extra: &[String],
) -> Result<ServerProcess, ServerError> {
    let binary = ferretdb_binary();
    if !binary.exists() {
        return Err(ServerError::Missing {
            what: "FerretDB",
            hint: format!("no binary at {}", binary.display()),
        });
    }
    std::fs::create_dir_all(data_dir.join("sqlite")).map_err(|e| ServerError::Start {
        what: "FerretDB",
        reason: format!("cannot create {}: {e}", data_dir.display()),
    })?;
    start_on_free_port(
        "FerretDB",
        binary,
        data_dir.to_path_buf(),
        temporary,
        |port, dir| {
            let mut args = vec![
                "--handler=sqlite".into(),
                format!("--sqlite-url=file:{}/", dir.join("sqlite").display()),
                format!("--listen-addr=127.0.0.1:{port}"),
                "--debug-addr=-".into(),
                "--state-dir=-".into(),
                "--log-level=warn".into(),
                "--telemetry=disable".into(),
            ];
            args.extend_from_slice(extra);
            args
        },
    )
}

/// Starts a private Mosquitto (anonymous, no persistence) with its files in `dir`.
pub fn start_mosquitto(dir: &Path, temporary: bool) -> Result<ServerProcess, ServerError> {
    start_mosquitto_with(dir, temporary, "allow_anonymous true\n")
}

/// Starts a private Mosquitto whose one listener (and the broker) also has the configuration
/// lines `settings`: `certfile`/`keyfile` for TLS, `password_file` and `allow_anonymous false`
/// for users. The TCP port is ready when this returns; TLS or users are not checked here.
pub fn start_mosquitto_with(
    dir: &Path,
    temporary: bool,
    settings: &str,
) -> Result<ServerProcess, ServerError> {
    std::fs::create_dir_all(dir).map_err(|e| ServerError::Start {
        what: "Mosquitto",
        reason: format!("cannot create {}: {e}", dir.display()),
    })?;
    start_on_free_port(
        "Mosquitto",
        mosquitto_binary(),
        dir.to_path_buf(),
        temporary,
        |port, dir| {
            let conf = dir.join(format!("mosquitto-{port}.conf"));
            // The collector acknowledges a batch once it is committed: with a window of more than
            // one batch, the next batch arrives while one commits (README, "Broker settings", whose
            // values these are). Started as root, Mosquitto switches to its own user,
            // which clears the parent-death signal and leaves it running after the tests: `user
            // root` keeps it as started (the option does nothing for any other user).
            let text = format!(
                "listener {port} 127.0.0.1\n{settings}\nuser root\npersistence false\nmax_queued_messages 100000\nmax_inflight_messages 1000\n"
            );
            let _ = std::fs::write(&conf, text);
            vec!["-c".into(), conf.display().to_string()]
        },
    )
}

/// A fresh temporary directory for a server's files.
pub fn temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}
