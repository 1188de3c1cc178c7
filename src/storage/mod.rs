//! RocksDB: opening the data directory, column families, typed tables and write batches.
//!
//! Storage knows keys, bytes and column families, never Matrix rules. Writes that must be seen
//! together go in one [`Batch`]; a write returns only once RocksDB has it in its write-ahead
//! log, so a request acknowledged to a client survives `kill -9` (and, with `storage.fsync`,
//! power loss).

pub mod keys;

use rocksdb::{ColumnFamilyDescriptor, DBWithThreadMode, IteratorMode, MultiThreaded, Options};
use serde::{Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::StorageConfig;

pub use keys::{Key, KeyReader};

/// The schema this build writes. Start-up refuses a data directory with a newer one.
pub const SCHEMA_VERSION: u64 = 1;

/// Declares the column families: the enum, the list opened at start-up, and their names, from
/// one table so the three cannot disagree.
macro_rules! column_families {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// The column families, one per table. Adding one here creates it on the next start.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Cf {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Cf {
            pub const ALL: &'static [Cf] = &[$(Cf::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Cf::$variant => $name,)*
                }
            }
        }
    };
}

column_families! {
    /// Counters and server-wide values (schema version, signing key).
    Global => "global",
    /// user id → account record.
    Users => "users",
    /// user id ‖ device id → device record.
    Devices => "devices",
    /// sha256(access token) → (user, device, expiry).
    AccessTokens => "access_tokens",
    /// sha256(refresh token) → (user, device).
    RefreshTokens => "refresh_tokens",
    /// registration token → uses and expiry.
    RegistrationTokens => "registration_tokens",
    /// kind byte ‖ long id (room, event, state key) → short id (u64).
    ShortIds => "short_ids",
    /// short event id → event id.
    ShortEventIds => "short_event_ids",
    /// room id → room record (version, short id, current state snapshot, forward extremities).
    Rooms => "rooms",
    /// short room id ‖ stream position → the event (PDU) and what we know of it.
    Pdus => "pdus",
    /// event id → short room id ‖ stream position.
    EventIndex => "event_index",
    /// snapshot id → state as a diff against a parent snapshot.
    StateSnapshots => "state_snapshots",
    /// user id ‖ room id → membership.
    UserRooms => "user_rooms",
    /// room id ‖ user id → membership.
    RoomMembers => "room_members",
    /// user ‖ device ‖ transaction id → event id, so retried sends are idempotent.
    TxnIds => "txn_ids",
    /// user id ‖ room id (empty for global) ‖ type → content and stream position.
    AccountData => "account_data",
    /// room alias → room id and who made it.
    Aliases => "aliases",
    /// room id ‖ alias → nothing: the aliases of a room.
    RoomAliases => "room_aliases",
    /// room id → nothing: rooms published in the room directory.
    PublicRooms => "public_rooms",
    /// media id → its record (sha256 of the bytes, size, type, file name, uploader).
    Media => "media",
    /// user id ‖ media id → expiry: ids made by `/create` still waiting for their upload.
    MediaPending => "media_pending",
    /// user id ‖ media id → size: what each user uploaded (quotas, admin listings).
    UserMedia => "user_media",
    /// media id ‖ width ‖ height ‖ method → the thumbnail's sha256, size and type.
    MediaThumbnails => "media_thumbnails",
    /// URL → cached link preview and when it was fetched.
    UrlPreviews => "url_previews",
    /// user id ‖ device id → the device's identity keys (as uploaded, plus signatures).
    DeviceKeys => "device_keys",
    /// user id ‖ device id ‖ algorithm ‖ key id → a one-time key not yet claimed.
    OneTimeKeys => "one_time_keys",
    /// user id ‖ device id ‖ algorithm → the fallback key and whether it was handed out.
    FallbackKeys => "fallback_keys",
    /// user id ‖ kind (master, self_signing, user_signing) → cross-signing key.
    CrossSigningKeys => "cross_signing_keys",
    /// signer ‖ target user → signatures of the signer's user-signing key on the target's
    /// master key (seen only by the signer).
    CrossSigningSignatures => "cross_signing_signatures",
    /// stream position → user id: the log of key changes, for `device_lists` and `/keys/changes`.
    KeyChanges => "key_changes",
    /// parent event id ‖ rel_type ‖ stream position → short room id: events relating to an
    /// event (replies in threads, edits, reactions, references).
    Relations => "relations",
    /// short room id ‖ thread root id → stream position of the thread's latest event.
    Threads => "threads",
    /// user id ‖ app id ‖ pushkey → pusher (where the user's device gets push notifications).
    Pushers => "pushers",
    /// term ‖ field ‖ short room id ‖ stream position → nothing: the full-text search index
    /// of message bodies, room names and topics.
    SearchTerms => "search_terms",
    /// report id → an abuse report (reporter, room, event or user, reason).
    Reports => "reports",
    /// user id ‖ version → backup version (algorithm, auth data, etag).
    BackupVersions => "backup_versions",
    /// user id ‖ version ‖ room id ‖ session id → backed-up session data.
    BackupKeys => "backup_keys",
    /// user id ‖ filter id → the filter definition (JSON).
    Filters => "filters",
    /// room ‖ user ‖ receipt type ‖ thread → event id, time, stream position.
    Receipts => "receipts",
    /// user ‖ device ‖ stream position → a to-device message waiting for that device.
    ToDevice => "to_device",
    /// user ‖ room ‖ stream position → 1 if the event highlights, 0 if it only notifies.
    PushActions => "push_actions",
    /// room id → what admins decided about a room: blocked (nobody may join) and/or deleted.
    RoomModeration => "room_moderation",
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "the data directory {0} is in use by another process (is a Myelin server running on it?)"
    )]
    Locked(PathBuf),
    #[error(
        "the data directory {path} was written by a newer Myelin (schema {found}; this build knows up to {SCHEMA_VERSION}); run the newer version or restore a backup"
    )]
    NewerSchema { path: PathBuf, found: u64 },
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt value in {cf}: {message}")]
    Corrupt { cf: &'static str, message: String },
}

type Rocks = DBWithThreadMode<MultiThreaded>;

/// The open database. Cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Db {
    rocks: Arc<Rocks>,
    sync_writes: bool,
    /// The options the database was opened with, kept when statistics were asked for
    /// (metrics read the block cache's hit and miss counters from them).
    statistics: Option<Arc<Options>>,
}

/// How [`Db::open_with`] opens the data directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write, holding the directory's lock.
    #[default]
    ReadWrite,
    /// Read and write, and count cache hits and misses for metrics.
    ReadWriteWithStatistics,
    /// Read a consistent view without taking the lock, so it works beside a running server.
    ReadOnly,
}

const SCHEMA_KEY: &[u8] = b"schema_version";

impl Db {
    /// Opens (or creates) the database under `dir/db` and checks its schema version.
    pub fn open(dir: &Path, config: &StorageConfig) -> Result<Db, StorageError> {
        Db::open_with(dir, config, OpenMode::ReadWrite)
    }

    pub fn open_with(
        dir: &Path,
        config: &StorageConfig,
        mode: OpenMode,
    ) -> Result<Db, StorageError> {
        let path = dir.join("db");
        let cache_bytes =
            usize::try_from(config.cache_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let cache = rocksdb::Cache::new_lru_cache(cache_bytes);
        let mut table_options = rocksdb::BlockBasedOptions::default();
        table_options.set_block_cache(&cache);
        table_options.set_bloom_filter(10.0, false);
        table_options.set_cache_index_and_filter_blocks(true);

        let mut cf_options = Options::default();
        cf_options.set_block_based_table_factory(&table_options);
        cf_options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Small memtables keep idle memory low; RocksDB flushes them as they fill.
        cf_options.set_write_buffer_size(4 * 1024 * 1024);

        let mut db_options = cf_options.clone();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        db_options.set_max_open_files(512);
        db_options.set_keep_log_file_num(3);
        db_options.set_max_background_jobs(2);

        if mode == OpenMode::ReadWriteWithStatistics {
            db_options.enable_statistics();
            db_options
                .set_statistics_level(rocksdb::statistics::StatsLevel::ExceptHistogramOrTimers);
        }

        let descriptors = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options.clone()));
        let opened = match mode {
            OpenMode::ReadOnly => {
                Rocks::open_cf_descriptors_read_only(&db_options, &path, descriptors, false)
            }
            _ => Rocks::open_cf_descriptors(&db_options, &path, descriptors),
        };
        let rocks = opened.map_err(|e| {
            if e.as_ref().contains("lock") {
                StorageError::Locked(dir.to_owned())
            } else {
                StorageError::Rocks(e)
            }
        })?;
        let db = Db {
            rocks: Arc::new(rocks),
            sync_writes: config.fsync,
            statistics: (mode == OpenMode::ReadWriteWithStatistics).then(|| Arc::new(db_options)),
        };
        if mode != OpenMode::ReadOnly {
            db.check_schema(dir)?;
        }
        Ok(db)
    }

    /// Block cache hits and misses since start-up, when opened with statistics.
    pub fn cache_hits_and_misses(&self) -> Option<(u64, u64)> {
        let options = self.statistics.as_ref()?;
        Some((
            options.get_ticker_count(rocksdb::statistics::Ticker::BlockCacheHit),
            options.get_ticker_count(rocksdb::statistics::Ticker::BlockCacheMiss),
        ))
    }

    /// A column family's size: live SST bytes plus its memtables, as RocksDB estimates them.
    pub fn size_of(&self, cf: Cf) -> Result<u64, StorageError> {
        let handle = self.handle(cf);
        let property = |name: &str| -> Result<u64, StorageError> {
            Ok(self
                .rocks
                .property_int_value_cf(&handle, name)?
                .unwrap_or(0))
        };
        Ok(
            property("rocksdb.total-sst-files-size")?
                + property("rocksdb.cur-size-all-mem-tables")?,
        )
    }

    /// How many keys a column family holds (a full scan of its keys: for admin tools, not for
    /// request paths).
    pub fn count(&self, cf: Cf) -> Result<u64, StorageError> {
        let mut count = 0;
        for item in self
            .rocks
            .iterator_cf(&self.handle(cf), IteratorMode::Start)
        {
            item?;
            count += 1;
        }
        Ok(count)
    }

    fn check_schema(&self, dir: &Path) -> Result<(), StorageError> {
        let global = self.table(Cf::Global);
        match global.get(SCHEMA_KEY)? {
            None => global.put(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes()),
            Some(bytes) => {
                let found = <[u8; 8]>::try_from(bytes.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StorageError::Corrupt {
                        cf: "global",
                        message: "schema version".into(),
                    })?;
                if found > SCHEMA_VERSION {
                    Err(StorageError::NewerSchema {
                        path: dir.to_owned(),
                        found,
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    pub fn table(&self, cf: Cf) -> Table<'_> {
        Table { db: self, cf }
    }

    pub fn batch(&self) -> Batch<'_> {
        Batch {
            db: self,
            inner: rocksdb::WriteBatch::default(),
        }
    }

    fn write_options(&self) -> rocksdb::WriteOptions {
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(self.sync_writes);
        options
    }

    fn handle(&self, cf: Cf) -> Arc<rocksdb::BoundColumnFamily<'_>> {
        // Every `Cf` is created when the database opens, so the handle always exists.
        self.rocks
            .cf_handle(cf.name())
            .expect("column family opened at start-up")
    }

    /// Flushes memtables and the WAL to disk: called on shutdown so the next start is quick.
    pub fn flush(&self) -> Result<(), StorageError> {
        for &cf in Cf::ALL {
            self.rocks.flush_cf(&self.handle(cf))?;
        }
        self.rocks.flush_wal(true)?;
        Ok(())
    }
}

/// A key and its (raw or decoded) value, as scans return them.
pub type Entry<V> = (Box<[u8]>, V);

/// One column family, read and written by key.
pub struct Table<'a> {
    db: &'a Db,
    cf: Cf,
}

impl Table<'_> {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.rocks.get_cf(&self.db.handle(self.cf), key)?)
    }

    /// Reads a JSON value written with [`Batch::put_json`] or [`Table::put_json`].
    pub fn get_json<T: DeserializeOwned>(
        &self,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<T>, StorageError> {
        self.get(key)?.map(|bytes| self.decode(&bytes)).transpose()
    }

    pub fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool, StorageError> {
        Ok(self
            .db
            .rocks
            .get_pinned_cf(&self.db.handle(self.cf), key)?
            .is_some())
    }

    /// A single put, durable when it returns.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), StorageError> {
        let mut batch = self.db.batch();
        batch.put(self.cf, key, value);
        batch.commit()
    }

    pub fn put_json<T: Serialize>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), StorageError> {
        let mut batch = self.db.batch();
        batch.put_json(self.cf, key, value)?;
        batch.commit()
    }

    /// All entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<Entry<Box<[u8]>>>, StorageError> {
        let prefix = prefix.as_ref();
        let mut out = Vec::new();
        let iter = self.db.rocks.iterator_cf(
            &self.db.handle(self.cf),
            IteratorMode::From(prefix, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, value));
        }
        Ok(out)
    }

    /// Up to `limit` entries under `prefix`, starting at `start` (inclusive, a full key) and
    /// going forwards or backwards in key order.
    pub fn scan_from(
        &self,
        prefix: &[u8],
        start: &[u8],
        forward: bool,
        limit: usize,
    ) -> Result<Vec<Entry<Box<[u8]>>>, StorageError> {
        let direction = if forward {
            rocksdb::Direction::Forward
        } else {
            rocksdb::Direction::Reverse
        };
        let iter = self.db.rocks.iterator_cf(
            &self.db.handle(self.cf),
            IteratorMode::From(start, direction),
        );
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, value));
        }
        Ok(out)
    }

    /// A single delete, durable when it returns.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), StorageError> {
        let mut batch = self.db.batch();
        batch.delete(self.cf, key);
        batch.commit()
    }

    /// Like [`Table::scan_prefix`], decoding each value as JSON.
    pub fn scan_prefix_json<T: DeserializeOwned>(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<Entry<T>>, StorageError> {
        self.scan_prefix(prefix)?
            .into_iter()
            .map(|(key, value)| Ok((key, self.decode(&value)?)))
            .collect()
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
            cf: self.cf.name(),
            message: e.to_string(),
        })
    }
}

/// Writes that land together or not at all.
pub struct Batch<'a> {
    db: &'a Db,
    inner: rocksdb::WriteBatch,
}

impl Batch<'_> {
    pub fn put(&mut self, cf: Cf, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.inner.put_cf(&self.db.handle(cf), key, value);
    }

    pub fn put_json<T: Serialize>(
        &mut self,
        cf: Cf,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageError::Corrupt {
            cf: cf.name(),
            message: e.to_string(),
        })?;
        self.put(cf, key, bytes);
        Ok(())
    }

    pub fn delete(&mut self, cf: Cf, key: impl AsRef<[u8]>) {
        self.inner.delete_cf(&self.db.handle(cf), key);
    }

    /// Writes the batch through the write-ahead log; returns once it is durable.
    pub fn commit(self) -> Result<(), StorageError> {
        self.db
            .rocks
            .write_opt(self.inner, &self.db.write_options())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Db {
        Db::open(dir, &StorageConfig::default()).expect("db opens")
    }

    #[test]
    fn prefix_scan_stays_inside_the_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        let devices = db.table(Cf::Devices);
        for (user, device) in [
            ("@a:x", "D1"),
            ("@a:x", "D2"),
            ("@ab:x", "D3"),
            ("@b:x", "D4"),
        ] {
            devices
                .put(Key::new().str(user).str(device), device)
                .expect("put");
        }
        let found: Vec<String> = devices
            .scan_prefix(Key::new().str("@a:x"))
            .expect("scan")
            .into_iter()
            .map(|(_, v)| String::from_utf8(v.into_vec()).expect("utf8"))
            .collect();
        assert_eq!(found, ["D1", "D2"]);
    }

    #[test]
    fn batch_is_atomic_and_persists_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = open(dir.path());
            let mut batch = db.batch();
            batch.put(Cf::Users, b"u", b"1");
            batch
                .put_json(Cf::Devices, b"d", &serde_json::json!({"n": 2}))
                .expect("json");
            batch.commit().expect("commit");
            batch = db.batch();
            batch.delete(Cf::Users, b"u");
            drop(batch); // never committed: the delete must not happen
        }
        let db = open(dir.path());
        assert_eq!(
            db.table(Cf::Users).get(b"u").expect("get"),
            Some(b"1".to_vec())
        );
        let value: serde_json::Value = db
            .table(Cf::Devices)
            .get_json(b"d")
            .expect("get")
            .expect("present");
        assert_eq!(value["n"], 2);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = open(dir.path());
            db.table(Cf::Global)
                .put(SCHEMA_KEY, (SCHEMA_VERSION + 1).to_be_bytes())
                .expect("put");
        }
        let err = Db::open(dir.path(), &StorageConfig::default())
            .err()
            .expect("refused");
        assert!(matches!(err, StorageError::NewerSchema { .. }), "{err}");
        assert!(err.to_string().contains("newer Myelin"));
    }

    #[test]
    fn second_open_reports_the_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _db = open(dir.path());
        let err = Db::open(dir.path(), &StorageConfig::default())
            .err()
            .expect("locked");
        assert!(matches!(err, StorageError::Locked(_)), "{err}");
    }
}
