//! Small tokenizer and word tables shared by the prompt reader and the draft parser.

use chrono::Weekday;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Word(String),
    /// Punctuation kept because it matters: clause breaks, `/`, `'`, `"`.
    Sym(char),
}

/// Lower-cases and splits text into numbers, words and a few symbols.
///
/// Digits and letters are split apart so "6x800m" reads as 6, x, 800, m and
/// "1h30" as 1, h, 30. Hyphens join nothing ("half-marathon" = half marathon).
pub(crate) fn tokenize(text: &str) -> Vec<Tok> {
    let lower = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
    let chars: Vec<char> = lower.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Tok::Num(s.parse::<f64>().unwrap_or(0.0)));
            continue;
        }
        if c.is_alphabetic() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphabetic()
                    || (chars[i] == '\''
                        && i > start
                        && chars.get(i + 1).is_some_and(|d| d.is_alphabetic())))
            {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
            continue;
        }
        match c {
            '\u{d7}' | '*' => out.push(Tok::Word("x".to_string())),
            '.' | ',' | ';' | '!' | '?' | ':' | '\n' | '(' | ')' => out.push(Tok::Sym('.')),
            '/' | '\'' | '"' | '+' => out.push(Tok::Sym(c)),
            _ => {}
        }
        i += 1;
    }
    out
}

pub(crate) fn word(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    }
}

pub(crate) fn weekday_from_word(w: &str) -> Option<Weekday> {
    let w = w.trim_end_matches('s');
    Some(match w {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" | "weds" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

pub(crate) fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

pub(crate) fn number_word(w: &str) -> Option<u32> {
    Some(match w {
        "one" | "once" => 1,
        "two" | "twice" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        _ => return None,
    })
}

/// Distance or duration as written on a draft line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Amount {
    Meters(u32),
    Seconds(u32),
}

fn to_u32(x: f64) -> u32 {
    if x.is_finite() {
        x.round().clamp(0.0, 4_000_000_000.0) as u32
    } else {
        0
    }
}

/// Reads an amount starting at `toks[i]`; returns it and the index after it.
///
/// "m" after a number below 100 means minutes (intervals.icu style "10m"),
/// otherwise metres ("800m").
pub(crate) fn amount_at(toks: &[Tok], i: usize) -> Option<(Amount, usize)> {
    let n = match toks.get(i) {
        Some(Tok::Num(n)) => *n,
        _ => return None,
    };
    match toks.get(i + 1) {
        Some(Tok::Word(u)) => match u.as_str() {
            "km" | "k" | "kms" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => {
                Some((Amount::Meters(to_u32(n * 1000.0)), i + 2))
            }
            "m" | "meter" | "meters" | "metre" | "metres" | "mtr" if n >= 100.0 => {
                Some((Amount::Meters(to_u32(n)), i + 2))
            }
            "m" | "min" | "mins" | "minute" | "minutes" => {
                let mut secs = n * 60.0;
                let mut j = i + 2;
                // "1 min 30" / "1min30s"
                if let Some(Tok::Num(s)) = toks.get(j)
                    && matches!(
                        word(toks.get(j + 1)),
                        Some("s" | "sec" | "secs" | "seconds")
                    )
                {
                    secs += s;
                    j += 2;
                }
                Some((Amount::Seconds(to_u32(secs)), j))
            }
            "mi" | "mile" | "miles" => Some((Amount::Meters(to_u32(n * 1609.344)), i + 2)),
            "h" | "hr" | "hrs" | "hour" | "hours" => {
                let mut secs = n * 3600.0;
                let mut j = i + 2;
                if let Some(Tok::Num(m)) = toks.get(j) {
                    secs += m * 60.0;
                    j += 1;
                    if matches!(word(toks.get(j)), Some("m" | "min" | "mins" | "minutes")) {
                        j += 1;
                    }
                }
                Some((Amount::Seconds(to_u32(secs)), j))
            }
            "s" | "sec" | "secs" | "second" | "seconds" => {
                Some((Amount::Seconds(to_u32(n)), i + 2))
            }
            _ => None,
        },
        Some(Tok::Sym('\'')) => Some((Amount::Seconds(to_u32(n * 60.0)), i + 2)),
        Some(Tok::Sym('"')) => Some((Amount::Seconds(to_u32(n)), i + 2)),
        _ => None,
    }
}

/// "7 km", "7.5 km", "800m", "20 min", "1h30", "20s" — the forms [`amount_at`] reads back.
pub(crate) fn format_amount(a: Amount) -> String {
    match a {
        Amount::Meters(m) if m >= 1000 => {
            if m % 1000 == 0 {
                format!("{} km", m / 1000)
            } else if m % 100 == 0 {
                format!("{}.{} km", m / 1000, (m % 1000) / 100)
            } else {
                format!("{}m", m)
            }
        }
        Amount::Meters(m) => format!("{}m", m),
        Amount::Seconds(s) if s >= 3600 && s % 60 == 0 => {
            let min = (s % 3600) / 60;
            if min == 0 {
                format!("{}h", s / 3600)
            } else {
                format!("{}h{:02}", s / 3600, min)
            }
        }
        Amount::Seconds(s) if s % 60 == 0 && s >= 120 => format!("{} min", s / 60),
        Amount::Seconds(s) => format!("{}s", s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(s: &str) -> Option<Amount> {
        amount_at(&tokenize(s), 0).map(|(a, _)| a)
    }

    #[test]
    fn amounts_round_trip() {
        for a in [
            Amount::Meters(7000),
            Amount::Meters(7500),
            Amount::Meters(800),
            Amount::Meters(1600),
            Amount::Meters(4350),
            Amount::Seconds(1200),
            Amount::Seconds(5400),
            Amount::Seconds(3600),
            Amount::Seconds(20),
            Amount::Seconds(90),
            Amount::Seconds(60),
        ] {
            assert_eq!(amt(&format_amount(a)), Some(a), "{}", format_amount(a));
        }
        assert_eq!(amt("45'"), Some(Amount::Seconds(2700)));
        assert_eq!(amt("1 hr 15 min"), Some(Amount::Seconds(4500)));
        assert_eq!(amt("10m"), Some(Amount::Seconds(600)));
        assert_eq!(amt("5 miles"), Some(Amount::Meters(8047)));
    }

    #[test]
    fn tokenizer_splits_reps() {
        let t = tokenize("6x800m");
        assert_eq!(
            t,
            vec![
                Tok::Num(6.0),
                Tok::Word("x".into()),
                Tok::Num(800.0),
                Tok::Word("m".into())
            ]
        );
        assert_eq!(tokenize("can’t")[0], Tok::Word("can't".into()));
    }
}
