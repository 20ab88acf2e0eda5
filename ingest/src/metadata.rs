//! Pod metadata attached to records: what the log path says, the node name, and labels and
//! annotations from the Kubernetes API (see [`crate::kube`]) cached by pod uid.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use schemas::Kubernetes;

use crate::discovery::PathMeta;

/// Label naming the application, preferred for `service.name`.
pub const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
/// Older convention for the application name.
pub const LABEL_APP: &str = "app";

/// What the API told us about one pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Pod metadata by uid, filled by the watch and read by the tailer once per file and change.
#[derive(Debug, Default)]
pub struct PodCache {
    pods: RwLock<HashMap<String, PodInfo>>,
    generation: AtomicU64,
}

impl PodCache {
    /// Bumped on every change, so readers refresh only when something changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The pod with `uid`, if known.
    pub fn get(&self, uid: &str) -> Option<PodInfo> {
        let pods = match self.pods.read() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        pods.get(uid).cloned()
    }

    /// Number of cached pods.
    pub fn len(&self) -> usize {
        match self.pods.read() {
            Ok(p) => p.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// True when no pod is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn with_pods<R>(&self, f: impl FnOnce(&mut HashMap<String, PodInfo>) -> R) -> R {
        let r = {
            let mut pods = match self.pods.write() {
                Ok(p) => p,
                Err(poisoned) => poisoned.into_inner(),
            };
            f(&mut pods)
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        r
    }
}

/// Builds the `kubernetes` group and `service.name` of a file's records.
pub(crate) fn build(
    path: Option<&PathMeta>,
    node: Option<&str>,
    pod: Option<&PodInfo>,
) -> (Kubernetes, Option<String>) {
    let mut k = Kubernetes::default();
    k.node.name = node.map(str::to_string);
    let Some(path) = path else {
        return (k, None);
    };
    k.namespace = Some(path.namespace.clone());
    k.pod.name = Some(path.pod.clone());
    k.pod.uid = Some(path.uid.clone());
    k.container.name = Some(path.container.clone());
    if let Some(pod) = pod {
        k.labels = pod.labels.clone();
    }
    let service = k
        .labels
        .get(LABEL_APP_NAME)
        .or_else(|| k.labels.get(LABEL_APP))
        .cloned()
        .unwrap_or_else(|| path.container.clone());
    (k, Some(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_prefers_labels_then_container() {
        let path = PathMeta {
            namespace: "shop".into(),
            pod: "api-1".into(),
            uid: "u1".into(),
            container: "app".into(),
        };
        let (k, s) = build(Some(&path), Some("node-a"), None);
        assert_eq!(s.as_deref(), Some("app"));
        assert_eq!(k.node.name.as_deref(), Some("node-a"));
        let mut pod = PodInfo::default();
        pod.labels.insert(LABEL_APP.into(), "legacy".into());
        assert_eq!(
            build(Some(&path), None, Some(&pod)).1.as_deref(),
            Some("legacy")
        );
        pod.labels.insert(LABEL_APP_NAME.into(), "checkout".into());
        let (k, s) = build(Some(&path), None, Some(&pod));
        assert_eq!(s.as_deref(), Some("checkout"));
        assert_eq!(k.labels.len(), 2);
        assert_eq!(build(None, None, Some(&pod)).1, None);
    }
}
