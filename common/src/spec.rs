//! The render spec: what the client asks the video to look like (the `options` of a job).
//!
//! Every field is optional on the wire; [`RenderSpec::default`] fills the rest, and the effective
//! spec (defaults filled in) is what the job record stores and returns. Unknown fields are an error
//! so that a typo (`"fsp": 60`) is reported instead of silently ignored.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::limits::Limits;

/// Largest canvas side, and largest canvas area (4K UHD).
pub const MAX_SIDE: u32 = 4096;
pub const MAX_AREA: u32 = 3840 * 2160;
pub const MIN_SIDE: u32 = 16;
pub const MAX_FPS: u32 = 60;
pub const MAX_SECONDS_PER_IMAGE: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(example = json!({"width": 1280, "height": 720, "fps": 30, "seconds_per_image": 3.0,
    "transition": {"kind": "crossfade", "seconds": 0.5}, "motion": "kenburns", "fit": "blur",
    "background": "#000000"}))]
pub struct RenderSpec {
    /// Video width in pixels: even, 16–4096.
    pub width: u32,
    /// Video height in pixels: even, 16–4096; width × height at most 3840 × 2160.
    pub height: u32,
    /// Frames per second, 1–60.
    pub fps: u32,
    /// How long each photo is on screen, in seconds (transitions overlap neighbours, they add no time).
    pub seconds_per_image: f64,
    pub transition: TransitionSpec,
    pub motion: Motion,
    pub fit: Fit,
    /// Colour behind a contained photo, `#rrggbb`.
    #[schema(value_type = String, example = "#000000")]
    pub background: Rgb,
}

impl Default for RenderSpec {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            seconds_per_image: 3.0,
            transition: TransitionSpec::default(),
            motion: Motion::KenBurns,
            fit: Fit::Blur,
            background: Rgb([0, 0, 0]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TransitionSpec {
    pub kind: TransitionKind,
    /// Length of the transition in seconds, centred on the cut; at most `seconds_per_image`.
    pub seconds: f64,
}

impl Default for TransitionSpec {
    fn default() -> Self {
        Self {
            kind: TransitionKind::Crossfade,
            seconds: 0.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    Crossfade,
    None,
}

/// Camera motion over each photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Motion {
    /// A slow sub-pixel zoom and pan.
    #[serde(rename = "kenburns")]
    KenBurns,
    None,
}

/// How a photo fills the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fill the canvas, cropping what overflows.
    Cover,
    /// Show the whole photo over the background colour.
    Contain,
    /// Show the whole photo over a blurred, filled copy of itself.
    Blur,
}

/// An sRGB colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl FromStr for Rgb {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("`{s}` is not a colour of the form #rrggbb"))?;
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| e.to_string());
        Ok(Self([byte(0)?, byte(2)?, byte(4)?]))
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl Serialize for Rgb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rgb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One broken rule of a spec: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Violation {
    /// The field, as a JSON path (`transition.seconds`).
    pub field: String,
    pub message: String,
}

impl RenderSpec {
    /// Parses the JSON `options` of a job; an error names the offending field.
    pub fn from_json(json: &[u8]) -> Result<Self, Violation> {
        let invalid = |message: String| Violation {
            field: "options".into(),
            message,
        };
        // serde would also read a struct from a JSON array, by position: only an object is a spec.
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        for (field, v) in [
            ("options", Some(&value)),
            ("transition", value.get("transition")),
        ] {
            if let Some(v) = v.filter(|v| !v.is_object()) {
                return Err(Violation {
                    field: field.into(),
                    message: format!("must be a JSON object, got {}", json_kind(v)),
                });
            }
        }
        let mut spec: Self = serde_json::from_value(value)
            .map_err(|e| invalid(format!("not a valid render spec: {e}")))?;
        if spec.transition.kind == TransitionKind::None {
            spec.transition.seconds = 0.0;
        }
        Ok(spec)
    }

    /// Checks every rule and returns all that are broken (empty = valid).
    pub fn validate(&self, image_count: u32, limits: &Limits) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut bad = |field: &str, message: String| {
            out.push(Violation {
                field: field.into(),
                message,
            });
        };
        for (field, v) in [("width", self.width), ("height", self.height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&v) || v % 2 != 0 {
                bad(
                    field,
                    format!("must be an even number from {MIN_SIDE} to {MAX_SIDE}, got {v}"),
                );
            }
        }
        if u64::from(self.width) * u64::from(self.height) > u64::from(MAX_AREA) {
            bad(
                "width",
                format!(
                    "{}x{} is larger than the largest canvas (3840x2160 pixels in area)",
                    self.width, self.height
                ),
            );
        }
        if !(1..=MAX_FPS).contains(&self.fps) {
            bad(
                "fps",
                format!("must be from 1 to {MAX_FPS}, got {}", self.fps),
            );
        }
        let spi = self.seconds_per_image;
        if !spi.is_finite() || spi <= 0.0 || spi > MAX_SECONDS_PER_IMAGE {
            bad(
                "seconds_per_image",
                format!("must be more than 0 and at most {MAX_SECONDS_PER_IMAGE}, got {spi}"),
            );
        } else if spi * f64::from(self.fps.max(1)) < 1.0 {
            bad(
                "seconds_per_image",
                format!(
                    "{spi} s at {} fps is less than one frame per photo",
                    self.fps
                ),
            );
        }
        let ts = self.transition.seconds;
        if self.transition.kind == TransitionKind::Crossfade
            && (!ts.is_finite() || ts < 0.0 || ts > spi)
        {
            bad(
                "transition.seconds",
                format!("must be from 0 to seconds_per_image ({spi}), got {ts}"),
            );
        }
        let total = f64::from(image_count) * spi;
        if total > limits.max_video_seconds {
            bad(
                "seconds_per_image",
                format!(
                    "{image_count} photos × {spi} s = {total} s is longer than the limit of {} s",
                    limits.max_video_seconds
                ),
            );
        } else if total.is_finite() {
            let frames = (total * f64::from(self.fps)).ceil() as u64;
            let work = Limits::megapixel_frames(self.width, self.height, frames);
            if work > limits.max_megapixel_frames as f64 {
                bad(
                    "seconds_per_image",
                    format!(
                        "{total} s at {} fps and {}x{} is {frames} frames, {work:.0} megapixel-frames \
                         of rendering, more than the limit of {}: make the video shorter, smaller \
                         or fewer frames per second",
                        self.fps, self.width, self.height, limits.max_megapixel_frames
                    ),
                );
            }
        }
        out
    }
}

/// What kind of JSON value `v` is, for a message.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(spec: &RenderSpec) -> Vec<String> {
        spec.validate(3, &Limits::default())
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn empty_options_take_every_default() {
        let spec = RenderSpec::from_json(b"{}").expect("valid");
        assert_eq!(spec, RenderSpec::default());
        assert!(fields(&spec).is_empty());
    }

    #[test]
    fn partial_options_keep_other_defaults() {
        let spec = RenderSpec::from_json(
            br##"{"fps": 24, "transition": {"seconds": 1}, "background": "#FF8000"}"##,
        )
        .expect("valid");
        assert_eq!(spec.fps, 24);
        assert_eq!(spec.transition.kind, TransitionKind::Crossfade);
        assert_eq!(spec.transition.seconds, 1.0);
        assert_eq!(spec.background, Rgb([255, 128, 0]));
        assert_eq!(spec.background.to_string(), "#ff8000");
        assert_eq!(spec.width, 1280);
    }

    #[test]
    fn unknown_fields_and_bad_enums_are_named() {
        let e = RenderSpec::from_json(br#"{"fsp": 24}"#).expect_err("typo");
        assert!(e.message.contains("fsp"), "{}", e.message);
        let e = RenderSpec::from_json(br#"{"fit": "stretch"}"#).expect_err("bad enum");
        assert!(e.message.contains("stretch"), "{}", e.message);
        let e = RenderSpec::from_json(br#"{"background": "red"}"#).expect_err("bad colour");
        assert!(e.message.contains("#rrggbb"), "{}", e.message);
    }

    #[test]
    fn rules_report_each_broken_field() {
        let spec = RenderSpec {
            width: 1281,
            height: 8,
            fps: 0,
            ..RenderSpec::default()
        };
        assert_eq!(fields(&spec), ["width", "height", "fps"]);
        let spec = RenderSpec {
            width: 4096,
            height: 4096,
            ..RenderSpec::default()
        };
        assert_eq!(fields(&spec), ["width"]);
        let spec = RenderSpec {
            seconds_per_image: 1.0,
            transition: TransitionSpec {
                kind: TransitionKind::Crossfade,
                seconds: 1.5,
            },
            ..RenderSpec::default()
        };
        assert_eq!(fields(&spec), ["transition.seconds"]);
        let spec = RenderSpec {
            seconds_per_image: f64::NAN,
            ..RenderSpec::default()
        };
        assert_eq!(fields(&spec), ["seconds_per_image"]);
        let spec = RenderSpec {
            seconds_per_image: 0.01,
            ..RenderSpec::default()
        };
        assert_eq!(fields(&spec), ["seconds_per_image", "transition.seconds"]);
    }

    #[test]
    fn video_length_limit_counts_images() {
        let spec = RenderSpec {
            seconds_per_image: 60.0,
            ..RenderSpec::default()
        };
        let limits = Limits {
            max_video_seconds: 600.0,
            ..Limits::default()
        };
        assert!(spec.validate(10, &limits).is_empty());
        let v = spec.validate(11, &limits);
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("660"), "{}", v[0].message);
    }

    #[test]
    fn options_must_be_an_object() {
        for (json, field, kind) in [
            (&br#"[1920, 1080, 30]"#[..], "options", "an array"),
            (b"42", "options", "a number"),
            (b"null", "options", "null"),
            (br#"{"transition": ["none", 0]}"#, "transition", "an array"),
        ] {
            let e = RenderSpec::from_json(json).expect_err("not an object");
            assert_eq!(e.field, field);
            assert!(e.message.contains(kind), "{}", e.message);
        }
    }

    #[test]
    fn work_is_bounded_whatever_the_mix_of_length_size_and_rate() {
        let limits = Limits::default();
        let uhd60 = RenderSpec {
            width: 3840,
            height: 2160,
            fps: 60,
            seconds_per_image: 60.0,
            ..RenderSpec::default()
        };
        // One minute of 2160p60 is ~29,860 megapixel-frames: allowed; two are not.
        assert!(uhd60.validate(1, &limits).is_empty());
        let v = uhd60.validate(2, &limits);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].message.contains("megapixel-frames"),
            "{}",
            v[0].message
        );
        assert!(v[0].message.contains("40000"), "{}", v[0].message);
        // The default canvas may run for the whole default length limit's worth of photos … up
        // to the work limit: 20 minutes of 720p30 pass, 25 do not.
        let hd = RenderSpec {
            seconds_per_image: 60.0,
            ..RenderSpec::default()
        };
        assert!(hd.validate(20, &limits).is_empty());
        assert_eq!(hd.validate(25, &limits).len(), 1);
    }

    #[test]
    fn transition_none_needs_no_seconds() {
        let spec = RenderSpec::from_json(br#"{"transition": {"kind": "none", "seconds": 99}}"#)
            .expect("valid");
        assert_eq!(spec.transition.seconds, 0.0);
        assert!(fields(&spec).is_empty());
    }
}
