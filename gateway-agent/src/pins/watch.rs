//! Has the pins state file changed since the last look? Asked on every `tools/call`.
//!
//! `pins accept` replaces the file by rename and the next call must see it. A `statx` of
//! the path per call answered that at the cost of a path walk (2.7% of the agent's CPU
//! per call under load, `perf`). An inotify watch on the file's directory, read without
//! blocking, answers it with one `read` that finds nothing almost always; the kernel
//! queues the event before `rename` returns, so the next call still sees the change.
//! Without a watch (no inotify, or the directory was not there) every look says
//! "maybe", and the caller compares modification times as before.

use std::{ffi::OsString, path::Path};

use nix::{
    errno::Errno,
    sys::inotify::{AddWatchFlags, InitFlags, Inotify},
};

pub struct StateWatch {
    inotify: Option<Inotify>,
    name: OsString,
}

impl StateWatch {
    /// Watches the directory of `file`, before the file is first read: a change between
    /// the two is then reported, not lost.
    pub fn new(file: &Path) -> Self {
        let name = file.file_name().map(OsString::from).unwrap_or_default();
        let inotify = file.parent().and_then(|dir| {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
            let events = AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_DELETE_SELF
                | AddWatchFlags::IN_MOVE_SELF;
            inotify.add_watch(dir, events).ok()?;
            Some(inotify)
        });
        Self { inotify, name }
    }

    /// `false` only when the file certainly has not changed since the last call.
    pub fn maybe_changed(&mut self) -> bool {
        let Some(inotify) = &self.inotify else {
            return true;
        };
        let mut changed = false;
        loop {
            match inotify.read_events() {
                Ok(events) => {
                    for event in events {
                        // The directory itself went away or moved: the watch no longer
                        // sees the path; look every time from now on.
                        if event.mask.intersects(
                            AddWatchFlags::IN_IGNORED
                                | AddWatchFlags::IN_DELETE_SELF
                                | AddWatchFlags::IN_MOVE_SELF,
                        ) {
                            self.inotify = None;
                            return true;
                        }
                        changed |= event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                            || event.name.as_deref() == Some(self.name.as_os_str());
                    }
                }
                Err(Errno::EAGAIN) => return changed,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    self.inotify = None;
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_replace_by_rename_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pins.json");
        std::fs::write(&file, "{}").unwrap();
        let mut watch = StateWatch::new(&file);
        assert!(watch.inotify.is_some());
        assert!(!watch.maybe_changed(), "nothing happened yet");

        std::fs::write(dir.path().join("other.json"), "{}").unwrap();
        assert!(!watch.maybe_changed(), "another file in the directory");

        let tmp = dir.path().join("pins.json.tmp");
        std::fs::write(&tmp, "{\"servers\":{}}").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert!(watch.maybe_changed(), "the rename that `pins accept` does");
        assert!(!watch.maybe_changed(), "reported once");

        std::fs::remove_file(&file).unwrap();
        assert!(watch.maybe_changed(), "removed");
    }

    #[test]
    fn without_its_directory_it_always_says_maybe() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = StateWatch::new(&dir.path().join("absent/pins.json"));
        assert!(watch.maybe_changed());
        assert!(watch.maybe_changed());
    }

    #[test]
    fn a_removed_directory_turns_the_watch_off() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        std::fs::create_dir(&sub).unwrap();
        let mut watch = StateWatch::new(&sub.join("pins.json"));
        assert!(!watch.maybe_changed());
        std::fs::remove_dir(&sub).unwrap();
        assert!(watch.maybe_changed());
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("pins.json"), "{}").unwrap();
        assert!(
            watch.maybe_changed(),
            "no watch left: every look says maybe"
        );
    }
}
