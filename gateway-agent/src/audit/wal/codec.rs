//! A row's bytes inside a WAL frame: every column but the two hashes (the writer seals
//! rows again, in WAL order, when it puts them into Parquet), in the chain's canonical
//! encoding ([`chain::encode_columns`]: one walk over the columns serves both). Only
//! this agent reads it back, and only after the frame's CRC matched.

use crate::audit::{
    chain,
    record::{AuditRecord, Direction, Kind, PrincipalColumns},
};

pub(super) fn encode(buf: &mut Vec<u8>, r: &AuditRecord) {
    chain::encode_columns(r, buf);
}

/// `None`: the bytes are not a row this encoder wrote (a CRC collision or a bug), never
/// a panic.
pub(super) fn decode(bytes: &[u8]) -> Option<AuditRecord> {
    let mut d = Dec(bytes);
    let time_us = i64::from_le_bytes(d.array()?);
    let host = d.text()?;
    let session = d.text()?;
    let request_id = d.opt_text()?;
    let direction = Direction::parse(&d.text()?)?;
    let kind = Kind::parse(&d.text()?)?;
    let r = AuditRecord {
        time_us,
        host,
        session,
        request_id,
        direction,
        kind,
        transport: d.text()?,
        protocol_version: d.opt_text()?,
        server_name: d.opt_text()?,
        server_addr: d.text()?,
        method: d.opt_text()?,
        tool: d.opt_text()?,
        payload: d.opt_text()?,
        status: d.opt()?.map(i32::from_le_bytes),
        error_code: d.opt()?.map(i64::from_le_bytes),
        decision: d.opt_text()?,
        rules: d.list()?,
        masked_count: u32::from_le_bytes(d.array()?),
        mask_rules: d.list()?,
        latency_us: d.opt()?.map(u64::from_le_bytes),
        bytes: u64::from_le_bytes(d.array()?),
        principal: PrincipalColumns {
            sub: d.opt_text()?,
            email: d.opt_text()?,
            groups: d.list()?,
            issuer: d.opt_text()?,
            pid: d.opt()?.map(u32::from_le_bytes),
            uid: d.opt()?.map(u32::from_le_bytes),
            user: d.opt_text()?,
            comm: d.opt_text()?,
            exe: d.opt_text()?,
            cgroup: d.opt_text()?,
        },
        agent_version: d.text()?,
        prev_hash: [0; 32],
        hash: [0; 32],
    };
    d.0.is_empty().then_some(r)
}

struct Dec<'a>(&'a [u8]);

impl Dec<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn text(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn present(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn opt_text(&mut self) -> Option<Option<String>> {
        if self.present()? {
            self.text().map(Some)
        } else {
            Some(None)
        }
    }

    fn opt<const N: usize>(&mut self) -> Option<Option<[u8; N]>> {
        if self.present()? {
            self.array().map(Some)
        } else {
            Some(None)
        }
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let count = u32::from_le_bytes(self.array()?) as usize;
        // Each item takes at least its 4-byte length: a corrupt count cannot allocate more
        // than the frame could hold.
        let mut items = Vec::with_capacity(count.min(self.0.len() / 4));
        for _ in 0..count {
            items.push(self.text()?);
        }
        Some(items)
    }
}
