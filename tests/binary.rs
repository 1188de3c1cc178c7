//! The `myelin` binary as an admin runs it: config checks, offline account creation, graceful
//! shutdown on SIGTERM, and durability of acknowledged writes across `kill -9`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_myelin");

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("config-{n}.toml"));
    let text = format!(
        "server_name = \"bin.test\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra}\n[rate_limits]\nenabled = false\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).expect("config written");
    path
}

fn myelin(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("myelin runs")
}

/// A running `myelin serve`, with the address it bound to.
struct Running {
    child: Child,
    base: String,
}

fn serve(config: &Path) -> Running {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("MYELIN_LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        assert!(
            Instant::now() < deadline,
            "server did not report its address"
        );
        let line = lines
            .next()
            .expect("server still running")
            .expect("log line");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["addr"].as_str().expect("addr").to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        base: format!("http://{addr}"),
    }
}

fn call(base: &str, method: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().expect("method"), format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

fn login(base: &str, user: &str, password: &str) -> (u16, Value) {
    call(
        base,
        "POST",
        "/_matrix/client/v3/login",
        None,
        json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}),
    )
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write_config(dir.path(), "");
    let output = myelin(&good, &["check-config"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    for (extra, key) in [
        ("bogus_key = 1\n", "bogus_key"),
        ("[storage]\ncache_mib = \"lots\"\n", "storage.cache_mib"),
    ] {
        let config = write_config(dir.path(), extra);
        let output = myelin(&config, &["check-config"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(key),
            "{key}: {stderr}"
        );
        // `serve` refuses the same config with the same message.
        let output = myelin(&config, &["serve"]);
        assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains(key));
    }

    let no_name = dir.path().join("noname.toml");
    std::fs::write(&no_name, "listen = \"127.0.0.1:0\"\n").expect("write");
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&no_name)
        .arg("check-config")
        .env_remove("MYELIN_SERVER_NAME")
        .output()
        .expect("runs");
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("server_name")
    );

    let output = Command::new(BIN)
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .env("MYELIN_SERVER_NAME", "bad name")
        .output()
        .expect("runs");
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("server_name")
    );

    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").expect("write");
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&good)
        .arg("check-config")
        .env("MYELIN_DATA_DIR", blocker.join("data"))
        .output()
        .expect("runs");
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("data_dir")
    );

    let output = myelin(&dir.path().join("missing.toml"), &["check-config"]);
    assert!(
        !output.status.success()
            && String::from_utf8_lossy(&output.stderr).contains("missing.toml")
    );
}

#[test]
fn offline_admin_then_serve_and_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let output = myelin(
        &config,
        &[
            "user",
            "create",
            "root",
            "--password",
            "pw-root-12",
            "--admin",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("@root:bin.test"));
    let output = myelin(&config, &["user", "create", "Bad Name", "--password", "x"]);
    assert!(!output.status.success());

    let mut server = serve(&config);
    let (status, body) = login(&server.base, "root", "pw-root-12");
    assert_eq!(status, 200, "{body}");

    // The data directory is locked while the server runs.
    let output = myelin(
        &config,
        &["user", "create", "other", "--password", "pw-other-1"],
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    signal(&server.child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "allow_registration = true");
    let mut server = serve(&config);
    let mut tokens = Vec::new();
    for i in 0..20 {
        let (status, body) = call(
            &server.base,
            "POST",
            "/_matrix/client/v3/register",
            None,
            json!({"username": format!("user{i}"), "password": format!("pw-user-{i}"), "auth": {"type": "m.login.dummy"}}),
        );
        assert_eq!(status, 200, "{body}");
        tokens.push(body["access_token"].as_str().expect("token").to_owned());
    }
    signal(&server.child, "-KILL");
    server.child.wait().expect("reaped");

    let mut server = serve(&config);
    for (i, token) in tokens.iter().enumerate() {
        let (status, body) = call(
            &server.base,
            "GET",
            "/_matrix/client/v3/account/whoami",
            Some(token),
            Value::Null,
        );
        assert_eq!(status, 200, "token {i} survived: {body}");
        assert_eq!(
            login(&server.base, &format!("user{i}"), &format!("pw-user-{i}")).0,
            200
        );
    }
    signal(&server.child, "-TERM");
    server.child.wait().expect("reaped");
}

/// Runs a command that must succeed; returns its standard output.
fn ok(config: &Path, args: &[&str]) -> String {
    let output = myelin(config, args);
    assert!(
        output.status.success(),
        "myelin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail; returns its standard error.
fn fails(config: &Path, args: &[&str]) -> String {
    let output = myelin(config, args);
    assert!(!output.status.success(), "myelin {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stop(mut server: Running) {
    signal(&server.child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn offline_user_and_room_commands_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    assert!(fails(&config, &["status"]).contains("no database"));
    ok(
        &config,
        &[
            "user",
            "create",
            "root",
            "--password",
            "pw-root-12",
            "--admin",
        ],
    );
    ok(
        &config,
        &["user", "create", "alice", "--password", "pw-alice-1"],
    );
    assert!(
        fails(
            &config,
            &["user", "create", "alice", "--password", "pw-alice-2"]
        )
        .contains("exists")
    );

    let server = serve(&config);
    let (_, session) = login(&server.base, "alice", "pw-alice-1");
    let token = session["access_token"].as_str().expect("token").to_owned();
    let (status, room) = call(
        &server.base,
        "POST",
        "/_matrix/client/v3/createRoom",
        Some(&token),
        json!({"name": "Lobby", "room_alias_name": "lobby"}),
    );
    assert_eq!(status, 200, "{room}");
    let room_id = room["room_id"].as_str().expect("room id").to_owned();
    // `status` reads beside the running server; the other commands refuse, naming the lock.
    let status = ok(&config, &["status"]);
    assert!(status.contains("users:     2"), "{status}");
    assert!(status.contains("rooms:     1"), "{status}");
    assert!(
        status.contains(concat!("Myelin ", env!("CARGO_PKG_VERSION"))),
        "{status}"
    );
    assert!(fails(&config, &["room", "list"]).contains("in use"));
    assert!(fails(&config, &["user", "deactivate", "alice"]).contains("in use"));
    stop(server);

    ok(
        &config,
        &[
            "user",
            "reset-password",
            "alice",
            "--password",
            "pw-alice-9",
        ],
    );
    assert!(ok(&config, &["user", "make-admin", "@alice:bin.test"]).contains("now a server admin"));
    assert!(fails(&config, &["user", "make-admin", "nobody"]).contains("no such user"));
    let listed = ok(&config, &["room", "list"]);
    assert!(
        listed.contains(&room_id) && listed.contains("Lobby") && listed.contains("#lobby:bin.test"),
        "{listed}"
    );
    let deleted = ok(&config, &["room", "delete", &room_id, "--block"]);
    assert!(deleted.contains("1 members removed"), "{deleted}");
    // Deleting again is harmless; an unknown room is an error.
    ok(&config, &["room", "delete", &room_id]);
    assert!(fails(&config, &["room", "delete", "!nope:bin.test"]).contains("Unknown room"));
    assert!(ok(&config, &["room", "list"]).contains("0 rooms"));

    let server = serve(&config);
    let (status, session) = login(&server.base, "alice", "pw-alice-9");
    assert_eq!(status, 200, "{session}");
    let alice = session["access_token"].as_str().expect("token").to_owned();
    let (status, rooms) = call(
        &server.base,
        "GET",
        "/_synapse/admin/v1/rooms",
        Some(&alice),
        Value::Null,
    );
    assert_eq!(
        (status, &rooms["total_rooms"]),
        (200, &json!(0)),
        "alice is an admin now"
    );
    let (status, _) = call(
        &server.base,
        "POST",
        &format!("/_matrix/client/v3/join/{room_id}"),
        Some(&alice),
        json!({}),
    );
    assert_eq!(status, 403, "the room is blocked");
    stop(server);

    ok(&config, &["user", "deactivate", "alice", "--erase"]);
    let server = serve(&config);
    assert_eq!(login(&server.base, "alice", "pw-alice-9").0, 403);
    stop(server);
}
