//! Reads a JSON object field by field and collects every problem, so a 400 lists all invalid
//! fields at once (serde stops at the first).

use serde_json::{Map, Value};

use crate::FieldError;

pub struct FieldReader<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
    errors: Vec<FieldError>,
}

impl<'a> FieldReader<'a> {
    /// Fails when the body is not a JSON object.
    pub fn new(value: &'a Value) -> Result<Self, Vec<FieldError>> {
        Self::nested(value, "")
    }

    /// Reads a nested object; `prefix` is prepended to field names in errors (`recent_race.`).
    pub fn nested(value: &'a Value, prefix: &str) -> Result<Self, Vec<FieldError>> {
        match value.as_object() {
            Some(obj) => Ok(Self {
                obj,
                prefix: prefix.to_owned(),
                errors: Vec::new(),
            }),
            None => {
                let field = if prefix.is_empty() {
                    "body".to_owned()
                } else {
                    prefix.trim_end_matches('.').to_owned()
                };
                Err(vec![FieldError::new(field, "must be a JSON object")])
            }
        }
    }

    /// Reads the object in `field` (errors name `parent.field.child`).
    pub fn child(&self, field: &str) -> Result<FieldReader<'a>, Vec<FieldError>> {
        let value = self.obj.get(field).unwrap_or(&Value::Null);
        Self::nested(value, &format!("{}{}.", self.prefix, field))
    }

    fn name(&self, field: &str) -> String {
        format!("{}{}", self.prefix, field)
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        let name = self.name(field);
        self.errors.push(FieldError::new(name, message));
    }

    pub fn extend(&mut self, errors: Vec<FieldError>) {
        self.errors.extend(errors);
    }

    /// The raw value, `None` when absent or null.
    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    pub fn required_int(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        match self.raw(field) {
            None => {
                self.error(field, "is required");
                None
            }
            Some(_) => self.opt_int(field, min, max),
        }
    }

    pub fn opt_int(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.raw(field)?;
        match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.error(field, format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.error(field, "must be an integer");
                None
            }
        }
    }

    pub fn opt_number(&mut self, field: &str, min: f64, max: f64) -> Option<f64> {
        let v = self.raw(field)?;
        match v.as_f64() {
            Some(n) if n >= min && n <= max => Some(n),
            Some(_) => {
                self.error(field, format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.error(field, "must be a number");
                None
            }
        }
    }

    /// A string of `min_len` to `max_len` characters, counted as sent (the seeds' "minimum 10
    /// characters"); with `min_len` of 1 or more, whitespace alone is refused too.
    pub fn required_str(&mut self, field: &str, min_len: usize, max_len: usize) -> Option<String> {
        match self.raw(field) {
            None => {
                self.error(field, "is required");
                None
            }
            Some(_) => {
                let s = self.opt_str(field, max_len)?;
                if min_len >= 1 && s.trim().is_empty() {
                    self.error(field, "must not be empty");
                    return None;
                }
                if s.chars().count() < min_len {
                    self.error(field, format!("must be at least {min_len} characters"));
                    return None;
                }
                Some(s)
            }
        }
    }

    pub fn opt_str(&mut self, field: &str, max_len: usize) -> Option<String> {
        let v = self.raw(field)?;
        match v.as_str() {
            Some(s) if s.chars().count() <= max_len => Some(s.to_owned()),
            Some(_) => {
                self.error(field, format!("must be at most {max_len} characters"));
                None
            }
            None => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    pub fn opt_bool(&mut self, field: &str) -> Option<bool> {
        let v = self.raw(field)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.error(field, "must be a boolean");
                None
            }
        }
    }

    /// A string that must be one of `allowed`.
    pub fn opt_enum(&mut self, field: &str, allowed: &[&str]) -> Option<String> {
        let s = self.opt_str(field, 100)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            self.error(field, format!("must be one of {}", quoted(allowed)));
            None
        }
    }

    pub fn required_enum(&mut self, field: &str, allowed: &[&str]) -> Option<String> {
        if self.raw(field).is_none() {
            self.error(field, format!("is required (one of {})", quoted(allowed)));
            return None;
        }
        self.opt_enum(field, allowed)
    }

    /// An ISO 8601 calendar date (`YYYY-MM-DD`). Anything else, a full timestamp included,
    /// gets the date-format message.
    pub fn opt_date(&mut self, field: &str) -> Option<chrono::NaiveDate> {
        let s = self.opt_str(field, usize::MAX)?;
        let date = iso_date(&s);
        if date.is_none() {
            self.error(field, ISO_DATE);
        }
        date
    }

    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// What [`iso_date`] accepts, as a field error says it.
pub const ISO_DATE: &str = "must be an ISO 8601 date (YYYY-MM-DD) between 1900 and 2999";

/// A calendar day written `YYYY-MM-DD`, in the years 1900–2999: no sign, no five-digit year
/// (chrono reads `+10000-01-01`), and room for a year-long plan after it.
pub fn iso_date(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    use chrono::Datelike;
    shaped
        .then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .filter(|d| (1900..=2999).contains(&d.year()))
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_invalid_field() {
        let body = json!({"weeks": 0, "level": "pro", "start_date": "2025-13-01", "org_id": 5});
        let mut r = FieldReader::new(&body).unwrap();
        r.required_int("weeks", 1, 52);
        r.required_enum("level", &["beginner"]);
        r.opt_date("start_date");
        r.required_str("org_id", 1, 100);
        r.required_str("missing", 1, 100);
        let errs = r.finish().unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["weeks", "level", "start_date", "org_id", "missing"]
        );
        assert_eq!(errs[0].message, "must be between 1 and 52");
    }

    #[test]
    fn min_length_counts_characters_as_sent_and_refuses_whitespace_alone() {
        // the seed: refined_draft "Minimum 10 characters"
        let body = json!({
            "padded": "  week 1  ",
            "short": "  week 1 ",
            "blank": "            ",
            "wide": "Wöche 1 ✓ü",
        });
        let mut r = FieldReader::new(&body).unwrap();
        assert_eq!(
            r.required_str("padded", 10, 100).as_deref(),
            Some("  week 1  ")
        );
        assert_eq!(
            r.required_str("wide", 10, 100).as_deref(),
            Some("Wöche 1 ✓ü")
        );
        assert_eq!(r.required_str("short", 10, 100), None);
        assert_eq!(r.required_str("blank", 10, 100), None);
        let errs = r.finish().unwrap_err();
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("short", "must be at least 10 characters"),
                ("blank", "must not be empty")
            ]
        );
    }

    #[test]
    fn a_timestamp_is_not_a_date_and_says_so() {
        let body = json!({"ts": "2025-05-05T00:00:00Z", "long": "2025-05-05 extra", "ok": "2025-05-05", "num": 20250505});
        let mut r = FieldReader::new(&body).unwrap();
        assert_eq!(r.opt_date("ts"), None);
        assert_eq!(r.opt_date("long"), None);
        assert_eq!(
            r.opt_date("ok"),
            chrono::NaiveDate::from_ymd_opt(2025, 5, 5)
        );
        assert_eq!(r.opt_date("num"), None);
        let errs = r.finish().unwrap_err();
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("ts", ISO_DATE),
                ("long", ISO_DATE),
                ("num", "must be a string"),
            ]
        );
    }

    #[test]
    fn a_date_has_four_digits_of_year_between_1900_and_2999() {
        for ok in ["1900-01-01", "2025-05-05", "2999-12-31"] {
            assert!(iso_date(ok).is_some(), "{ok}");
        }
        for bad in [
            "+10000-01-01",
            "-001-01-01",
            "+2025-05-05",
            "1899-12-31",
            "3000-01-01",
            "2025-5-05",
            "2025-02-30",
            "2025/05/05",
            " 2025-05-05",
        ] {
            assert!(iso_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn non_object_body_is_rejected() {
        assert!(FieldReader::new(&json!([1, 2])).is_err());
    }
}
