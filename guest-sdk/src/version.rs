//! Istio (and Kubernetes) version tags: the shared vocabulary's parser, so a policy
//! orders versions exactly as the host does.

pub use meshup_vocab::version::{Version, cmp_tags, image_tag};
