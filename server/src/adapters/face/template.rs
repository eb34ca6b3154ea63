//! Face templates at rest: a learner's embedding sealed with AES-256-GCM under a key named by
//! its id, so keys can rotate (new templates use the current key; older ones stay readable by
//! the key id stored beside them). The learner id is the associated data, so a sealed template
//! moved to another learner's row fails to open. Invariant: no plaintext template is ever
//! written anywhere; keys come from configuration (`PROCTOR_TEMPLATE_KEY`) or files in the
//! data directory's `keys/` folder, never from the database.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use sha2::Digest;

/// What can go wrong sealing or opening a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template key {0} is not configured")]
    UnknownKey(String),
    #[error("the template key is malformed: {0}")]
    BadKey(String),
    #[error("the sealed template is corrupt or belongs to another learner")]
    Corrupt,
    #[error("cannot read or write the template key file: {0}")]
    Io(#[from] std::io::Error),
}

/// A sealed template as stored: the key id and base64(nonce ‖ ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub sealed: String,
}

/// The configured template keys.
pub struct TemplateKeys {
    current: String,
    keys: BTreeMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for TemplateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateKeys")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn key_id(key: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(key)[..6])
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm, TemplateError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| TemplateError::BadKey("must be 32 bytes".into()))
}

impl TemplateKeys {
    /// Loads every `keys/template-<id>.key` file under `data_dir` (base64, 32 bytes) and the
    /// `configured` key (base64, from `PROCTOR_TEMPLATE_KEY`), which becomes current. Without a
    /// configured key the newest file is current; with none at all one is created.
    pub fn load(data_dir: &Path, configured: Option<&str>) -> Result<TemplateKeys, TemplateError> {
        let dir = data_dir.join("keys");
        std::fs::create_dir_all(&dir)?;
        let mut keys = BTreeMap::new();
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("template-") && name.ends_with(".key")) {
                continue;
            }
            let raw = B64
                .decode(std::fs::read_to_string(entry.path())?.trim())
                .map_err(|e| TemplateError::BadKey(format!("{name}: {e}")))?;
            let id = key_id(&raw);
            keys.insert(id.clone(), cipher(&raw)?);
            let modified = entry.metadata()?.modified()?;
            if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
                newest = Some((modified, id));
            }
        }
        let current = if let Some(k) = configured {
            let raw = B64
                .decode(k.trim())
                .map_err(|e| TemplateError::BadKey(format!("PROCTOR_TEMPLATE_KEY: {e}")))?;
            let id = key_id(&raw);
            keys.insert(id.clone(), cipher(&raw)?);
            id
        } else if let Some((_, id)) = newest {
            id
        } else {
            let mut raw = [0u8; 32];
            rand::rng().fill_bytes(&mut raw);
            let id = key_id(&raw);
            let path = dir.join(format!("template-{id}.key"));
            std::fs::write(&path, B64.encode(raw))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            keys.insert(id.clone(), cipher(&raw)?);
            id
        };
        Ok(TemplateKeys { current, keys })
    }

    /// The id of the key new templates are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Seals an embedding for a learner under the current key.
    pub fn seal(&self, learner_id: &str, embedding: &[f32]) -> Result<Sealed, TemplateError> {
        let plain: Vec<u8> = embedding.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.seal_bytes(learner_id.as_bytes(), &plain)
    }

    /// Seals a learner's enrolment photo (associated data `photo:<learner id>`, so a sealed
    /// photo never opens as a template or for another learner).
    pub fn seal_photo(&self, learner_id: &str, photo: &[u8]) -> Result<Sealed, TemplateError> {
        self.seal_bytes(format!("photo:{learner_id}").as_bytes(), photo)
    }

    /// Opens a sealed enrolment photo.
    pub fn open_photo(&self, learner_id: &str, s: &Sealed) -> Result<Vec<u8>, TemplateError> {
        self.open_bytes(format!("photo:{learner_id}").as_bytes(), s)
    }

    fn seal_bytes(&self, aad: &[u8], plain: &[u8]) -> Result<Sealed, TemplateError> {
        let c = self
            .keys
            .get(&self.current)
            .ok_or_else(|| TemplateError::UnknownKey(self.current.clone()))?;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = c
            .encrypt(&Nonce::from(nonce), Payload { msg: plain, aad })
            .map_err(|_| TemplateError::Corrupt)?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(Sealed {
            key_id: self.current.clone(),
            sealed: B64.encode(out),
        })
    }

    /// Opens a sealed template of a learner.
    pub fn open(&self, learner_id: &str, s: &Sealed) -> Result<Vec<f32>, TemplateError> {
        let plain = self.open_bytes(learner_id.as_bytes(), s)?;
        Ok(plain
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn open_bytes(&self, aad: &[u8], s: &Sealed) -> Result<Vec<u8>, TemplateError> {
        let c = self
            .keys
            .get(&s.key_id)
            .ok_or_else(|| TemplateError::UnknownKey(s.key_id.clone()))?;
        let raw = B64.decode(&s.sealed).map_err(|_| TemplateError::Corrupt)?;
        if raw.len() < 12 {
            return Err(TemplateError::Corrupt);
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| TemplateError::Corrupt)?;
        c.decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| TemplateError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_rotates_and_binds_to_the_learner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = TemplateKeys::load(dir.path(), None).expect("creates a key");
        let emb: Vec<f32> = (0..128).map(|i| i as f32 / 100.0).collect();
        let s = keys.seal("learner-1", &emb).expect("seal");
        assert!(!s.sealed.contains("0.01"));
        assert_eq!(keys.open("learner-1", &s).expect("open"), emb);
        assert!(matches!(
            keys.open("learner-2", &s),
            Err(TemplateError::Corrupt)
        ));
        // Rotation: a configured key becomes current; the old file key still opens old rows.
        let new_key = B64.encode([7u8; 32]);
        let rotated = TemplateKeys::load(dir.path(), Some(&new_key)).expect("rotated");
        assert_ne!(rotated.current_id(), s.key_id);
        assert_eq!(rotated.open("learner-1", &s).expect("old row"), emb);
        // The same data dir reloads the same file key.
        let again = TemplateKeys::load(dir.path(), None).expect("reload");
        assert_eq!(again.current_id(), s.key_id);
    }
}
