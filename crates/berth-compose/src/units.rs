//! Durations in Go's notation (`1m30s`, what compose reads and prints) and
//! sizes in Docker's (`512m`, `1gb`: binary multiples).

/// Nanoseconds from `1h2m3.5s`, `500ms`, `10us`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs >= 0.0).then(|| (secs * 1e9).round() as u64);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Some(total.round() as u64)
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `10s`, `1.5s`, `500ms`, `0s`.
pub fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1u64)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(ns, div));
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s_ns = ns % 60_000_000_000;
    let secs = format!("{}s", fraction(s_ns, 1_000_000_000));
    if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    }
}

/// `value / div` with the fractional digits Go prints (no trailing zeros).
fn fraction(value: u64, div: u64) -> String {
    let whole = value / div;
    let frac = value % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Bytes from `1024`, `512m`, `1g`, `1.5gb`, `2 KiB` (binary multiples, as Docker).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let value: f64 = s[..num_end].parse().ok()?;
    let unit = s[num_end..].trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((value * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_as_go_does() {
        for (input, shown) in [
            ("10s", "10s"),
            ("90s", "1m30s"),
            ("1h", "1h0m0s"),
            ("1m30s", "1m30s"),
            ("1.5s", "1.5s"),
            ("500ms", "500ms"),
            ("2h45m", "2h45m0s"),
            ("0", "0s"),
            ("30", "30s"),
        ] {
            assert_eq!(format_duration(parse_duration(input).unwrap()), shown, "{input}");
        }
        assert!(parse_duration("10 parsecs").is_none());
        assert!(parse_duration("s").is_none());
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("1gb"), Some(1 << 30));
        assert_eq!(parse_bytes("50M"), Some(52428800));
        assert_eq!(parse_bytes("2 KiB"), Some(2048));
        assert_eq!(parse_bytes("lots"), None);
    }
}
