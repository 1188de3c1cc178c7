//! Search at scale: 100,000 messages in one room, then the latency of `/search` queries and
//! the size of the word index next to the size of the messages.
//!
//! Runs an in-process release server on loopback and talks HTTP to it, like a client would:
//!
//!     cargo bench --bench search            (MESSAGES=100000 by default)
//!
//! It prints figures; it asserts nothing about time.

use myelin::Server;
use myelin::config::Config;
use myelin::storage::Cf;
use serde_json::{Value, json};
use std::time::Instant;

/// A small deterministic generator, so every run searches the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A message of 6–20 words from a 3,000-word vocabulary with a Zipf-like spread (a few words
/// are everywhere, most are rare), like chat text.
fn message(rng: &mut Rng) -> String {
    let words = 6 + rng.next() % 15;
    (0..words)
        .map(|_| {
            let r = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
            let rank = (3000f64.powf(r)) as u64;
            format!("w{rank}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let messages: usize = std::env::var("MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let table: toml::Table = "server_name = \"bench.local\"".parse().expect("toml");
    let mut config = Config::from_table(table, []).expect("config");
    config.listen = "127.0.0.1:0".into();
    config.data_dir = dir.path().to_owned();
    config.allow_registration = true;
    config.rate_limits.enabled = false;
    config.log.level = "warn".into();
    let server = Server::start(config).await.expect("server");
    let base = format!("http://{}/_matrix/client/v3", server.addr);
    let http = reqwest::Client::new();

    let registered: Value = http
        .post(format!("{base}/register"))
        .json(&json!({"username": "bench", "password": "bench-password-1", "auth": {"type": "m.login.dummy"}}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let room: Value = http
        .post(format!("{base}/createRoom"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("room")
        .json()
        .await
        .expect("json");
    let room = room["room_id"].as_str().expect("room").to_owned();

    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut body_bytes = 0usize;
    let texts: Vec<String> = (0..messages).map(|_| message(&mut rng)).collect();
    for chunk in texts.chunks(8).enumerate() {
        let (n, batch) = chunk;
        let sends = batch.iter().enumerate().map(|(i, text)| {
            body_bytes += text.len();
            http.put(format!("{base}/rooms/{room}/send/m.room.message/{n}-{i}"))
                .bearer_auth(&token)
                .json(&json!({"msgtype": "m.text", "body": text}))
                .send()
        });
        for sent in futures_util::future::join_all(sends).await {
            assert!(sent.expect("sent").status().is_success());
        }
    }
    let fill = started.elapsed();
    println!(
        "stored {messages} messages ({:.1} MB of bodies) in {:.1} s",
        body_bytes as f64 / 1e6,
        fill.as_secs_f64()
    );

    let queries: &[(&str, &str)] = &[
        ("common word (in most messages)", "w1"),
        ("mid-frequency word", "w40"),
        ("rare word", "w2900"),
        ("two words", "w3 w17"),
    ];
    for order in ["rank", "recent"] {
        for (label, term) in queries {
            let mut samples = Vec::new();
            let mut count = 0;
            for _ in 0..20 {
                let t = Instant::now();
                let found: Value = http
                    .post(format!("{base}/search"))
                    .bearer_auth(&token)
                    .json(&json!({"search_categories": {"room_events": {"search_term": term, "order_by": order, "filter": {"limit": 10}}}}))
                    .send()
                    .await
                    .expect("search")
                    .json()
                    .await
                    .expect("json");
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
                count = found["search_categories"]["room_events"]["count"]
                    .as_u64()
                    .unwrap_or(0);
            }
            let median = percentile(&mut samples, 0.5);
            let p95 = percentile(&mut samples, 0.95);
            println!(
                "search {order:>6} {label:<32} hits {count:>6}  median {median:>8.2} ms  p95 {p95:>8.2} ms"
            );
        }
    }

    // Logical sizes: what the index stores next to what the messages are.
    let services = &server.services;
    let mut index_bytes = 0usize;
    let mut index_entries = 0usize;
    for (key, value) in services
        .db
        .table(Cf::SearchTerms)
        .scan_prefix([])
        .expect("scan")
    {
        index_bytes += key.len() + value.len();
        index_entries += 1;
    }
    let mut pdu_bytes = 0usize;
    for (key, value) in services.db.table(Cf::Pdus).scan_prefix([]).expect("scan") {
        pdu_bytes += key.len() + value.len();
    }
    println!(
        "index: {index_entries} entries, {:.1} MB (keys and values); message bodies {:.1} MB; stored events {:.1} MB",
        index_bytes as f64 / 1e6,
        body_bytes as f64 / 1e6,
        pdu_bytes as f64 / 1e6
    );
    let on_disk: u64 = walk(dir.path());
    println!(
        "data directory on disk (compressed, with WAL): {:.1} MB",
        on_disk as f64 / 1e6
    );
    drop(server);
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => walk(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
