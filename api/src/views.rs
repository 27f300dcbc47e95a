//! Rendered views kept in memory, each with the read-model position it was read at, and served
//! again only while nothing that changes it has been committed since (the access cache knows the
//! position of the last change to each user's view).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use lru::LruCache;
use vigil_domain::id::Id;

/// Users whose view is kept.
const CAPACITY: usize = 100_000;

/// A JSON body already serialised.
#[derive(Debug, Clone)]
pub struct RawJson(pub Bytes);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The full view of users, by id.
pub struct UserViews {
    cache: Mutex<LruCache<Id, (u64, RawJson)>>,
}

impl UserViews {
    pub fn new() -> Self {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The view of `id`, if one read at or after `changed_at` is kept.
    pub fn get(&self, id: Id, changed_at: u64) -> Option<RawJson> {
        let mut cache = self.cache.lock().ok()?;
        match cache.get(&id) {
            Some((read_at, view)) if *read_at >= changed_at => Some(view.clone()),
            _ => None,
        }
    }

    /// Keeps `view` of `id`, read from read models that had applied everything up to `read_at`.
    pub fn put(&self, id: Id, read_at: u64, view: RawJson) {
        if let Ok(mut cache) = self.cache.lock() {
            let newer = cache.peek(&id).is_some_and(|(kept, _)| *kept > read_at);
            if !newer {
                cache.put(id, (read_at, view));
            }
        }
    }
}

impl Default for UserViews {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::from_bytes([n; 12])
    }

    fn view(text: &'static str) -> RawJson {
        RawJson(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn a_view_is_served_until_something_changes_it() {
        let views = UserViews::new();
        views.put(id(1), 10, view("{}"));
        assert!(views.get(id(1), 10).is_some());
        assert!(views.get(id(1), 11).is_none(), "changed after it was read");
        assert!(views.get(id(2), 0).is_none());
    }

    #[test]
    fn an_older_reading_never_replaces_a_newer_one() {
        let views = UserViews::new();
        views.put(id(1), 10, view("{\"new\":1}"));
        views.put(id(1), 5, view("{\"old\":1}"));
        assert_eq!(
            views.get(id(1), 10).map(|v| v.0),
            Some(Bytes::from_static(b"{\"new\":1}"))
        );
    }
}
