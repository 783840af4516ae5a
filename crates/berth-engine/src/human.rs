//! Docker's human-readable units (go-units): sizes, durations, "… ago".
//! Shared by every front, so `ps`, `images` and the API say the same.

/// Docker's human sizes: decimal units, 3 significant digits ("4.26MB"),
/// as `images`, `history` and `ps --size` show them.
pub fn human_size(bytes: u64) -> String {
    human_size_digits(bytes, 3)
}

/// Docker's longer human sizes, 4 significant digits ("4.257MB"), as
/// `system df` shows them (go-units' HumanSize).
pub fn human_size_4(bytes: u64) -> String {
    human_size_digits(bytes, 4)
}

fn human_size_digits(bytes: u64, digits: i32) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < units.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", significant(size, digits), units[i])
}

/// Go's `%.Ng` for values below 1000: N significant digits, trailing
/// zeros dropped.
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let decimals = (digits - 1 - v.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's "About an hour", "3 days" (go-units HumanDuration).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0).round() as i64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// "5 minutes ago" from an RFC 3339 time.
pub fn since(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => format!(
            "{} ago",
            human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        ),
        Err(_) => "N/A".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(123_400_000), "123MB");
        // What dockerd's `system df` showed beside `images`' 1.98MB.
        assert_eq!(human_size_4(1_984_155), "1.984MB");
        assert_eq!(human_size_4(1_234_010), "1.234MB");
        assert_eq!(human_size_4(23), "23B");
        assert_eq!(human_size_4(0), "0B");
        assert_eq!(human_size_4(9_999_600), "10MB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }
}
