//! Identifier newtypes. Ids are opaque strings (UUIDs minted by the service) so that the
//! domain never parses or orders them; a newtype per entity keeps them from being mixed up.
//! Each is a `Box<str>`: ids never grow, and a worker holds three in every live fold.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub Box<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s.into_boxed_str())
            }
        }
    };
}

id_type!(/// A training platform (an OAuth2 client).
    PlatformId);
id_type!(/// A subsidised training class, bound to one policy profile version.
    ClassId);
id_type!(/// A course: an ordered list of lessons.
    CourseId);
id_type!(/// One lesson (a video with a duration and a content hash).
    LessonId);
id_type!(/// A real-name learner.
    LearnerId);
id_type!(/// A learner's enrolment in a class.
    EnrolmentId);
id_type!(/// One learning session: a learner watching one lesson, one socket at a time.
    SessionId);
