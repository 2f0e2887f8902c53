//! A file system in memory, for the delivery tests: every call is atomic, as the
//! rename-based claims need (a rename of a missing file fails, as on disk).

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::Fs;

#[derive(Debug, Default)]
pub struct MemFs(pub RefCell<BTreeMap<String, String>>);

impl Fs for MemFs {
    fn read(&self, path: &str) -> Option<String> {
        self.0.borrow().get(path).cloned()
    }
    fn list(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = format!("{dir}/");
        Some(
            self.0
                .borrow()
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|rest| !rest.contains('/'))
                .map(str::to_owned)
                .collect(),
        )
    }
    fn write(&self, path: &str, text: &str) -> bool {
        self.0.borrow_mut().insert(path.into(), text.into());
        true
    }
    fn overwrite(&self, path: &str, text: &str) -> bool {
        self.write(path, text)
    }
    fn rename(&self, from: &str, to: &str) -> bool {
        let mut files = self.0.borrow_mut();
        match files.remove(from) {
            Some(text) => {
                files.insert(to.into(), text);
                true
            }
            None => false,
        }
    }
    fn remove(&self, path: &str) -> bool {
        self.0.borrow_mut().remove(path).is_some()
    }
}
