//! The local-directory evidence store (the embedded default). Files are written to a temp
//! name and renamed, so a crash never leaves a half-written snapshot under its final name.

use std::path::{Component, Path, PathBuf};

use crate::ports::Evidence;

#[derive(Debug)]
pub struct FsEvidence {
    root: PathBuf,
}

impl FsEvidence {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<FsEvidence> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(FsEvidence { root })
    }

    fn resolve(&self, key: &str) -> std::io::Result<PathBuf> {
        let rel = Path::new(key);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "evidence key must be a plain relative path",
            ));
        }
        Ok(self.root.join(rel))
    }
}

impl Evidence for FsEvidence {
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<String> {
        let path = self.resolve(key)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
        Ok(key.to_owned())
    }

    fn get(&self, locator: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.resolve(locator)?)
    }

    fn delete(&self, locator: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.resolve(locator)?) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_refuses_escaping_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ev = FsEvidence::new(dir.path()).expect("evidence dir");
        let loc = ev.put("s/1/a.jpg", b"abc").expect("put");
        assert_eq!(ev.get(&loc).expect("get"), b"abc");
        assert!(ev.put("../escape.jpg", b"x").is_err());
        assert!(ev.put("/abs.jpg", b"x").is_err());
        ev.delete(&loc).expect("delete");
        assert!(ev.get(&loc).is_err());
        ev.delete(&loc).expect("deleting a missing file is fine");
    }
}
