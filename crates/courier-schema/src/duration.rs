//! The duration syntax of `channels.json`: a whole number and one unit.

use std::time::Duration;

/// Parses `"500ms"`, `"30s"`, `"15m"`, `"2h"` or `"7d"`.
///
/// One unit per value keeps the files easy to read and compare; a zero
/// duration is refused because every duration in a channel contract (TTL,
/// visibility timeout, backoff, SLA) would silently disable its feature at
/// zero.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let split = input
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{input:?} has no unit; use ms, s, m, h or d"))?;
    let (number, unit) = input.split_at(split);
    if number.is_empty() {
        return Err(format!("{input:?} does not start with a number"));
    }
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{input:?} is too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{input:?} has unknown unit {unit:?}; use ms, s, m, h or d"
            ))
        }
    };
    let millis = value
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("{input:?} is too large"))?;
    if millis == 0 {
        return Err(format!("{input:?} must be greater than zero"));
    }
    Ok(Duration::from_millis(millis))
}

/// Writes a duration back in the largest unit that divides it exactly.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<u64, &str>) {
        let actual = parse_duration(input).map(|d| d.as_millis() as u64);
        match (actual, expected) {
            (Ok(a), Ok(e)) => assert_eq!(a, e, "{input}"),
            (Err(a), Err(e)) => assert!(a.contains(e), "{input}: {a:?} lacks {e:?}"),
            (a, e) => panic!("{input}: got {a:?}, expected {e:?}"),
        }
    }

    #[test]
    fn parses_each_unit() {
        check("500ms", Ok(500));
        check("30s", Ok(30_000));
        check("15m", Ok(900_000));
        check("2h", Ok(7_200_000));
        check("7d", Ok(604_800_000));
    }

    #[test]
    fn refuses_bad_input() {
        check("", Err("has no unit"));
        check("30", Err("has no unit"));
        check("s", Err("does not start with a number"));
        check("1w", Err("unknown unit \"w\""));
        check("1h30m", Err("unknown unit \"h30m\""));
        check("0s", Err("greater than zero"));
        check("99999999999999999999s", Err("too large"));
        check("9999999999999999d", Err("too large"));
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        for (millis, text) in [
            (500, "500ms"),
            (30_000, "30s"),
            (90_000, "90s"),
            (3_600_000, "1h"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(millis)), text);
        }
    }
}
