//! To-device messages: delivered in order to one device (or all of a user's devices), in
//! `/sync`, and deleted once the device syncs past them, so none is delivered twice.

use ruma::{DeviceId, OwnedDeviceId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::service::stream::Stream;
use crate::storage::{Cf, Db, Key, KeyReader};

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    sender: String,
    kind: String,
    content: Value,
}

pub struct ToDevice {
    db: Db,
    stream: Arc<Stream>,
}

fn inbox(user: &UserId, device: &DeviceId) -> Key {
    Key::new().str(user.as_str()).str(device.as_str())
}

impl ToDevice {
    pub fn new(db: Db, stream: Arc<Stream>) -> Self {
        ToDevice { db, stream }
    }

    /// Queues one message per target device, unless this sender's device already sent this
    /// transaction (then nothing happens: the client is retrying).
    pub fn send(
        &self,
        sender: &UserId,
        sender_device: &DeviceId,
        txn_id: &str,
        kind: &str,
        targets: Vec<(&UserId, OwnedDeviceId, Value)>,
    ) -> Result<()> {
        let txn = Key::new()
            .str("to_device")
            .str(sender.as_str())
            .str(sender_device.as_str())
            .bytes(txn_id.as_bytes());
        if self.db.table(Cf::TxnIds).contains(&txn)? {
            return Ok(());
        }
        let mut tickets = Vec::with_capacity(targets.len());
        let mut batch = self.db.batch();
        for (user, device, content) in targets {
            let mut ticket = self.stream.begin()?;
            ticket.concerns([user]);
            let stored = Stored {
                sender: sender.to_string(),
                kind: kind.to_owned(),
                content,
            };
            batch.put_json(
                Cf::ToDevice,
                inbox(user, &device).u64(ticket.position),
                &stored,
            )?;
            tickets.push(ticket);
        }
        batch.put(Cf::TxnIds, &txn, []);
        batch.commit()?;
        drop(tickets);
        Ok(())
    }

    /// Messages for a device up to `upto`, oldest first, after deleting those at or below
    /// `acknowledged` (the position the device synced from: it has them already).
    pub fn take(
        &self,
        user: &UserId,
        device: &DeviceId,
        acknowledged: u64,
        upto: u64,
    ) -> Result<Vec<Value>> {
        let prefix = inbox(user, device);
        let table = self.db.table(Cf::ToDevice);
        let mut batch = self.db.batch();
        let mut messages = Vec::new();
        for (key, stored) in table.scan_prefix_json::<Stored>(&prefix)? {
            let position = KeyReader::new(&key[prefix.as_ref().len()..])
                .u64()
                .ok_or_else(|| Error::internal("corrupt to-device key"))?;
            if position <= acknowledged {
                batch.delete(Cf::ToDevice, &key);
            } else if position <= upto {
                messages.push(json!({"sender": stored.sender, "type": stored.kind, "content": stored.content}));
            }
        }
        batch.commit()?;
        Ok(messages)
    }
}
