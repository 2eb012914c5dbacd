//! Sessions: a rep signed in by an emailed link holds a cookie, signed with
//! HMAC-SHA256 by the `cookie` crate, that names the rep and when the session
//! ends. HttpOnly (no script reads it), SameSite=Lax (another site's form
//! never carries it; a link from an email still does), Secure on https.
//! Nothing is stored server-side: signing out removes the cookie, and a
//! session ends by itself after [`SESSION_HOURS`].

use chrono::{DateTime, Duration, Utc};
use cookie::{Cookie, CookieJar, Key, SameSite};
use http::HeaderMap;
use leadflow_domain::link::derive_key;

pub const SESSION_COOKIE: &str = "leadflow_session";
/// How long a sign-in lasts.
pub const SESSION_HOURS: i64 = 12;

/// A signed-in rep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub rep: String,
    pub expires_at: DateTime<Utc>,
}

/// Makes and reads session cookies.
#[derive(Clone)]
pub struct Sessions {
    key: Key,
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("secure", &self.secure).finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions keyed by the app secret (at least 32 bytes, checked by the
    /// caller); `secure` when the app is served over https.
    pub fn new(secret: &[u8], secure: bool) -> Sessions {
        Sessions { key: Key::derive_from(&derive_key(secret, b"leadflow sessions v1")), secure }
    }

    fn cookie(&self, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build((SESSION_COOKIE, value))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(cookie::time::Duration::seconds(max_age.num_seconds()))
            .build()
    }

    /// The `Set-Cookie` value that signs `rep` in at `now`.
    pub fn start(&self, rep: &str, now: DateTime<Utc>) -> (Session, String) {
        let expires_at = now + Duration::hours(SESSION_HOURS);
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key)
            .add(self.cookie(format!("{}.{rep}", expires_at.timestamp()), Duration::hours(SESSION_HOURS)));
        let set = jar.delta().next().map(|c| c.to_string()).unwrap_or_default();
        (Session { rep: rep.to_owned(), expires_at }, set)
    }

    /// The `Set-Cookie` value that signs out.
    pub fn end(&self) -> String {
        let mut c = self.cookie(String::new(), Duration::zero());
        c.make_removal();
        c.to_string()
    }

    /// The session a request carries at `now`: `None` without a cookie, with
    /// one that is not ours (or was altered), or with one that has ended.
    pub fn read(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Session> {
        let mut jar = CookieJar::new();
        for header in headers.get_all(http::header::COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for c in Cookie::split_parse(text.to_owned()).flatten() {
                if c.name() == SESSION_COOKIE {
                    jar.add_original(c);
                }
            }
        }
        let value = jar.signed(&self.key).get(SESSION_COOKIE)?;
        let (expires, rep) = value.value().split_once('.')?;
        let expires_at = DateTime::from_timestamp(expires.parse().ok()?, 0)?;
        (now < expires_at && !rep.is_empty()).then(|| Session { rep: rep.to_owned(), expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, cookie.parse().unwrap());
        h
    }

    /// The `name=value` part of a `Set-Cookie` value.
    fn pair(set: &str) -> &str {
        set.split(';').next().unwrap()
    }

    #[test]
    fn a_session_is_read_back_until_it_ends() {
        let sessions = Sessions::new(&[1; 32], true);
        let now = at("2026-12-01T10:00:00Z");
        let (session, set) = sessions.start("ana", now);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"), "{set}");
        assert!(set.contains("Path=/") && set.contains("Max-Age=43200"), "{set}");
        let h = headers(&format!("other=1; {}", pair(&set)));
        assert_eq!(sessions.read(&h, now + Duration::hours(1)), Some(session));
        assert_eq!(sessions.read(&h, now + Duration::hours(SESSION_HOURS)), None);
    }

    #[test]
    fn an_altered_or_foreign_cookie_is_no_session() {
        let sessions = Sessions::new(&[1; 32], false);
        let now = at("2026-12-01T10:00:00Z");
        let (_, set) = sessions.start("ana", now);
        let value = pair(&set);
        // Another rep's name written into the cookie.
        let altered = value.replace(".ana", ".mia");
        assert_eq!(sessions.read(&headers(&altered), now), None);
        // A cookie signed with another secret.
        let other = Sessions::new(&[2; 32], false);
        assert_eq!(other.read(&headers(value), now), None);
        for junk in ["leadflow_session=", "leadflow_session=x.y", "leadflow_session", "=;;=", "leadflow_session=%%%"] {
            assert_eq!(sessions.read(&headers(junk), now), None, "{junk}");
        }
        assert!(sessions.end().contains("Max-Age=0"), "{}", sessions.end());
    }
}
