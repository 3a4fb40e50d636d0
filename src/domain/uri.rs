//! The user information of a server address (`mongodb://ops:pw@db/x`, `mqtt://broker:1883`): read,
//! replaced, and redacted for messages, logs and `config show`. One rule for every server: the user
//! name stays (it says who connects), the password never shows.

use super::secret::REDACTED;

/// The address split around its user information: (`scheme://`, `user[:password]`, `@host…`),
/// when it has one. Read by hand because the `url` crate refuses a replica set's host list
/// (`h1:27017,h2:27017`).
fn split_userinfo(uri: &str) -> Option<(&str, &str, &str)> {
    let start = uri.find("://")? + 3;
    let rest = &uri[start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((&uri[..start], &rest[..at], &rest[at..]))
}

/// The user and (if any) password of an address, as written (percent-encoded).
pub fn uri_userinfo(uri: &str) -> Option<(&str, Option<&str>)> {
    let (_, userinfo, _) = split_userinfo(uri)?;
    Some(match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    })
}

/// The address with its password shown as `<redacted>`. Text without a `scheme://` that still
/// holds an `@` before its path (`ops:pw@db:27017`) may carry a password where none is expected:
/// everything before that `@` is redacted.
pub fn redacted_uri(uri: &str) -> String {
    match (split_userinfo(uri), uri_userinfo(uri)) {
        (Some((scheme, _, host)), Some((user, Some(_)))) => {
            format!("{scheme}{user}:{REDACTED}{host}")
        }
        (Some(_), _) => uri.to_string(),
        (None, _) if !uri.contains("://") => {
            let authority_end = uri.find(['/', '?']).unwrap_or(uri.len());
            match uri[..authority_end].rfind('@') {
                Some(at) => format!("{REDACTED}{}", &uri[at..]),
                None => uri.to_string(),
            }
        }
        (None, _) => uri.to_string(),
    }
}

/// `uri` with `password` as the password of the user it names (percent-encoded).
pub fn uri_with_password(uri: &str, password: &str) -> String {
    let Some((scheme, userinfo, host)) = split_userinfo(uri) else {
        return uri.to_string();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{scheme}{user}:{encoded}{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_address_keeps_the_user_and_never_shows_the_password() {
        let uri = "mongodb://op:s3cr3t@db.example:27017/autovolt";
        assert_eq!(
            redacted_uri(uri),
            "mongodb://op:<redacted>@db.example:27017/autovolt"
        );
        assert_eq!(
            redacted_uri("mongodb://ops:p%40ss@h1:27017,h2:27017/x?authSource=admin"),
            "mongodb://ops:<redacted>@h1:27017,h2:27017/x?authSource=admin"
        );
        // Broker URLs follow the same rule.
        assert_eq!(
            redacted_uri("mqtt://tech:s3cr3t@broker.campus:1883"),
            "mqtt://tech:<redacted>@broker.campus:1883"
        );
        assert_eq!(
            redacted_uri("ftp://u:s3cr3tpw@127.0.0.1:1"),
            "ftp://u:<redacted>@127.0.0.1:1"
        );
        // Nothing to hide: shown as given, even when no URL parser would take it.
        assert_eq!(redacted_uri("mqtts://flag:8883"), "mqtts://flag:8883");
        assert_eq!(redacted_uri("mongodb://h/x?a=b@c"), "mongodb://h/x?a=b@c");
        assert_eq!(redacted_uri("mongodb://ops@h/x"), "mongodb://ops@h/x");
        assert_eq!(redacted_uri("not a url"), "not a url");
        // No scheme, but something that looks like credentials: hidden all the same.
        assert_eq!(
            redacted_uri("tech:s3cr3t@broker:1883"),
            "<redacted>@broker:1883"
        );
    }

    #[test]
    fn a_password_is_set_percent_encoded() {
        let with = uri_with_password("mongodb://ops@h1,h2/x", "p@ss:w/rd");
        assert_eq!(with, "mongodb://ops:p%40ss%3Aw%2Frd@h1,h2/x");
        assert_eq!(uri_userinfo(&with), Some(("ops", Some("p%40ss%3Aw%2Frd"))));
        assert_eq!(uri_userinfo("mongodb://h/x"), None);
    }
}
