//! The demo seed for the embedded default: on first start, a demo platform (province 41,
//! Henan) with a three-lesson course whose content is approved, so that a newcomer can run
//! `proctor simulate` and open the demo at once. Its credentials are written to
//! `<data-dir>/demo-credentials.json` (mode 0600), never printed in logs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::App;
use super::catalog::{NewCourse, NewLesson};
use crate::auth::sha256_hex;

/// What the demo seed leaves for `proctor simulate` and the tour.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub server: String,
    pub client_id: String,
    pub client_secret: String,
    pub platform_id: String,
    pub course_id: String,
    pub lesson_ids: Vec<String>,
}

/// The demo lessons: (title, duration in seconds). Their content hashes are derived from the
/// titles, and approved for province 41.
pub const DEMO_LESSONS: [(&str, u32); 3] = [
    ("安全生产基础 Workplace safety basics", 12 * 60),
    ("电工基础 Electrical basics", 45 * 60),
    ("急救常识 First aid", 45 * 60),
];

pub const DEMO_PROVINCE: &str = "41";

impl App {
    /// Seeds the demo once; returns the credentials file's content either way.
    pub async fn seed_demo(&self, data_dir: &Path) -> anyhow::Result<DemoCredentials> {
        use anyhow::Context;
        let path = data_dir.join("demo-credentials.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut creds: DemoCredentials =
                serde_json::from_str(&text).context("Failed to read demo-credentials.json")?;
            let _ = self.demo_platform.set(creds.platform_id.clone());
            if creds.server != self.public_url {
                creds.server = self.public_url.clone();
                write_private(&path, &serde_json::to_string_pretty(&creds)?)?;
            }
            return Ok(creds);
        }
        let platform_creds = self
            .create_platform("Demo Training Platform 演示培训平台", DEMO_PROVINCE)
            .await?;
        let platform = self
            .store
            .platform(&platform_creds.platform_id)
            .await?
            .context("Failed to read back the demo platform")?;
        let lessons: Vec<NewLesson> = DEMO_LESSONS
            .iter()
            .map(|(title, secs)| NewLesson {
                title: (*title).to_owned(),
                duration_s: *secs,
                content_hash: sha256_hex(title.as_bytes()),
            })
            .collect();
        for l in &lessons {
            self.store
                .approve_content(DEMO_PROVINCE, &l.content_hash, self.now())
                .await?;
        }
        let course = self
            .create_course(
                &platform,
                NewCourse {
                    title: "Demo course 演示课程".into(),
                    lessons,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("Failed to create the demo course: {e}"))?;
        let _ = self.demo_platform.set(platform.id.clone());
        let creds = DemoCredentials {
            server: self.public_url.clone(),
            client_id: platform_creds.client_id,
            client_secret: platform_creds.client_secret,
            platform_id: platform.id,
            course_id: course.id,
            lesson_ids: course.lessons.iter().map(|l| l.id.clone()).collect(),
        };
        write_private(&path, &serde_json::to_string_pretty(&creds)?)?;
        Ok(creds)
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
