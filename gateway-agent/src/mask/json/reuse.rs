//! Masking what a message says twice only once.
//!
//! An MCP tool result that has `structuredContent` also carries it serialised in a `text`
//! block (the specification asks for this, for clients that read only text), so half of
//! a large result is the other half again, escaped into a string. Masking that string
//! means decoding it, parsing it and walking it; when its value is byte for byte the text
//! of a container the walk has already masked as data, the outcome is known: the same
//! replacements at the same offsets, the same report. So strings that may hold such a
//! copy are left to the end of the walk, compared (without decoding them into a new
//! string) with the containers walked as data, and given the known outcome on a match.
//!
//! When that is provably equivalent: a container's walk depends on nothing but its text,
//! where it is read (data) and its depth. Depth matters only where the nesting limit is
//! reached, so a container is remembered only if its walk reached no limit and refused no
//! JSON-looking string (whose parse might have failed on the limit instead at another
//! depth), and it is reused only where its deepest value stays under the limit too. A
//! container is also not remembered if a string inside it was left for later: its own
//! replacements would be incomplete. The differential tests compare with a walk that
//! reuses nothing.

use super::{Doc, Edits, MAX_DEPTH, MaskReport, NodeId, Place, Walker};

/// Containers shorter than this are not remembered, and strings shorter than this (plus
/// their quotes) are not left for later: a small copy costs little to mask again.
pub(super) const MIN_REUSED: usize = 128;

/// What one document's walk remembers (a string holding JSON is walked as a document of
/// its own, with its own).
#[derive(Default)]
pub(super) struct Reuse {
    pub memos: Vec<Memo>,
    /// Strings that may repeat a container, with their depth: masked after the walk.
    pub deferred: Vec<(NodeId, usize)>,
}

/// One container's text and the outcome of masking it as data.
pub(super) struct Memo {
    /// Its raw span in the document.
    pub start: usize,
    pub end: usize,
    /// Its replacements: the walk's edits from `edits.0` to `edits.1`.
    pub edits: (usize, usize),
    pub report: MaskReport,
    /// How many levels below the container its walk went (JSON inside strings
    /// included).
    pub height: usize,
}

impl Walker<'_> {
    /// Walks a container read as data and remembers the outcome, if it does not depend
    /// on where the container sits ([`reuse`]).
    pub(super) fn remembered(
        &mut self,
        doc: &Doc<'_>,
        node: NodeId,
        depth: usize,
        edits: &mut Edits,
    ) {
        let (edits_from, events, deferred) =
            (edits.len(), self.depth_events, self.reuse.deferred.len());
        let deepest = std::mem::replace(&mut self.deepest, depth);
        let outer = std::mem::take(&mut *self.report);
        self.container(doc, node, Place::Data, depth, edits);
        let report = std::mem::replace(&mut *self.report, outer);
        self.report.merge(&report);
        let height = self.deepest - depth;
        self.deepest = self.deepest.max(deepest);
        if self.depth_events == events && self.reuse.deferred.len() == deferred {
            let (start, end) = doc.span(node);
            self.reuse.memos.push(Memo {
                start,
                end,
                edits: (edits_from, edits.len()),
                report,
                height,
            });
        }
    }

    /// Masks the strings left for the end of the walk: by a remembered container whose
    /// text the string holds, else as any string.
    pub(super) fn masked_deferred(&mut self, doc: &Doc<'_>, edits: &mut Edits) {
        let deferred = std::mem::take(&mut self.reuse.deferred);
        for (node, depth) in deferred {
            let (start, end) = doc.span(node);
            let text = doc.text();
            // Inner root at `depth + 1`; the copy's deepest value stays under the limit.
            let same = self.reuse.memos.iter().position(|memo| {
                memo.end - memo.start <= end - start
                    && depth + 1 + memo.height < MAX_DEPTH
                    && doc.str_is(node, &text[memo.start..memo.end])
            });
            let Some(same) = same else {
                self.data_string_now(doc, node, depth, edits);
                continue;
            };
            let memo = &self.reuse.memos[same];
            self.report.merge(&memo.report);
            // As deep as masking the string would have gone.
            self.deepest = self.deepest.max(depth + 1 + memo.height);
            if memo.edits.0 < memo.edits.1 {
                let moved = edits.moved(memo.edits.0, memo.edits.1, memo.start);
                if let Some(literal) = doc.str_edited(node, moved) {
                    edits.push(start, end, literal);
                }
            }
        }
    }
}
