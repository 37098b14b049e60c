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
pub const MIN_FPS: u32 = 12;
pub const MAX_FPS: u32 = 60;
/// `motion_strength` range: 0 holds the camera still, 1 is the default amount, 2 twice it.
pub const MAX_MOTION_STRENGTH: f64 = 2.0;
pub const MAX_SECONDS_PER_IMAGE: f64 = 60.0;
/// Thumbnail sizes: the longest side in pixels, at most this many per job.
pub const MIN_THUMBNAIL: u32 = 16;
pub const MAX_THUMBNAIL: u32 = 2048;
pub const MAX_THUMBNAILS: usize = 8;
/// The animated preview: its length in seconds and its width in pixels.
pub const MAX_PREVIEW_SECONDS: f64 = 10.0;
pub const MIN_PREVIEW_WIDTH: u32 = 64;
pub const MAX_PREVIEW_WIDTH: u32 = 640;
/// Frames per second of the animated preview: smooth enough, small enough.
pub const PREVIEW_FPS: u32 = 10;
/// Longest fade-out of the soundtrack, in seconds.
pub const MAX_AUDIO_FADE_SECONDS: f64 = 10.0;
/// Longest `callback_url`, in characters.
pub const MAX_CALLBACK_URL_CHARS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(example = json!({"width": 1280, "height": 720, "fps": 30, "seconds_per_image": 3.0,
    "transition": {"kind": "crossfade", "seconds": 0.5}, "motion": "kenburns",
    "motion_strength": 1.0, "fit": "blur", "background": "#000000", "quality": "standard",
    "format": "mp4", "thumbnails": [100, 300, 600], "preview": {"format": "gif", "seconds": 3.0, "width": 320}}))]
pub struct RenderSpec {
    /// Video width in pixels: even, 16–4096. Set by `resolution` when that is given.
    #[schema(minimum = 16, maximum = 4096, multiple_of = 2)]
    pub width: u32,
    /// Video height in pixels: even, 16–4096; width × height at most 3840 × 2160. Set by
    /// `resolution` when that is given.
    #[schema(minimum = 16, maximum = 4096, multiple_of = 2)]
    pub height: u32,
    /// A size preset instead of `width` and `height` (not both): the short side of the video, at
    /// `aspect`. Kept in the effective options as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The shape of a `resolution` preset (default `16:9`); alone it applies to 720p.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect: Option<Aspect>,
    /// Frames per second, 12–60.
    #[schema(minimum = 12, maximum = 60)]
    pub fps: u32,
    /// How long each photo is on screen, in seconds (transitions overlap neighbours, they add no time).
    #[schema(exclusive_minimum = 0.0, maximum = 60.0)]
    pub seconds_per_image: f64,
    /// Seconds on screen per photo, one for each in upload order (each like
    /// `seconds_per_image`, which they replace). They move with their photo when `order` sorts
    /// the photos, so the job's options list them in the video's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = durations_schema)]
    pub durations: Option<Vec<f64>>,
    pub order: Order,
    pub transition: TransitionSpec,
    pub motion: Motion,
    /// How far the camera moves, 0–2: 0 holds it still, 1 (default) zooms by 12 % and pans
    /// within that, 2 twice as far.
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub motion_strength: f64,
    pub fit: Fit,
    /// Colour behind a contained photo, and under the transparent parts of a photo with alpha,
    /// `#rrggbb`.
    #[schema(value_type = String, pattern = "^#[0-9A-Fa-f]{6}$", example = "#000000")]
    pub background: Rgb,
    pub quality: Quality,
    pub format: Format,
    /// Sizes of JPEG thumbnails of the poster: each the longest side in pixels, 16–2048, at
    /// most 8, no size twice; `[]` for none. A size larger than the video gives the poster's size
    /// (never upscaled).
    #[schema(schema_with = thumbnails_schema)]
    pub thumbnails: Vec<u32>,
    /// A short looping animation of the whole video (sped up to fit), for galleries and chat
    /// previews; absent or null for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewSpec>,
    /// With an `audio` part: how long the soundtrack fades out at the end of the video, 0–10
    /// seconds (never more than the video).
    #[schema(minimum = 0.0, maximum = 10.0)]
    pub audio_fade_seconds: f64,
    /// Where to POST the job, signed, when it ends (succeeded, failed or cancelled): an
    /// `http(s)` URL of at most 2048 characters, without credentials, on a public address unless
    /// the server allows private ones. Retried with backoff for an hour; the job shows the
    /// attempts (`webhook`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        format = "uri",
        max_length = 2048,
        example = "https://example.com/hooks/minimoto"
    )]
    pub callback_url: Option<String>,
}

/// `durations` as the document states it: each like `seconds_per_image` (the count, one per
/// photo, is a rule no schema can state: a 422 names it).
fn durations_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{
        ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
    };
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .default(Some(serde_json::Value::Null))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
                .exclusive_minimum(Some(0.0))
                .maximum(Some(MAX_SECONDS_PER_IMAGE)),
        )
        .description(Some(
            "Seconds on screen per photo, one for each in upload order (each like \
             `seconds_per_image`, which they replace). They move with their photo when `order` \
             sorts the photos, so the job's options list them in the video's order.",
        ))
        .examples([serde_json::json!([3.0, 5.0, 2.5])])
        .build()
}

/// `thumbnails` as the document states it: each size's bounds, the count, no size twice.
fn thumbnails_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                .minimum(Some(MIN_THUMBNAIL))
                .maximum(Some(MAX_THUMBNAIL)),
        )
        .max_items(Some(MAX_THUMBNAILS))
        .unique_items(true)
        .default(Some(serde_json::json!([100, 300, 600])))
        .description(Some(
            "Sizes of JPEG thumbnails of the poster: each the longest side in pixels, 16–2048, \
             at most 8, no size twice; `[]` for none. A size larger than the video gives the \
             poster's size (never upscaled).",
        ))
        .examples([serde_json::json!([100, 300, 600])])
        .build()
}

impl Default for RenderSpec {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            resolution: None,
            aspect: None,
            fps: 30,
            seconds_per_image: 3.0,
            durations: None,
            order: Order::Upload,
            transition: TransitionSpec::default(),
            motion: Motion::KenBurns,
            motion_strength: 1.0,
            fit: Fit::Blur,
            background: Rgb([0, 0, 0]),
            quality: Quality::Standard,
            format: Format::Mp4,
            thumbnails: vec![100, 300, 600],
            preview: None,
            audio_fade_seconds: 2.0,
            callback_url: None,
        }
    }
}

/// The video's container and codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// H.264 (High profile; Main for `quality: draft`) in MP4, faststart: plays everywhere.
    #[default]
    Mp4,
    /// VP9 in WebM, its index at the front: smaller files at the same look, for browsers.
    Webm,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
        }
    }

    /// The media type a download is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::Webm => "video/webm",
        }
    }
}

/// The animated preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PreviewSpec {
    pub format: PreviewFormat,
    /// Length in seconds, more than 0 and at most 10; the whole video is sped up to fit (a
    /// video shorter than this plays at its own speed).
    #[schema(exclusive_minimum = 0.0, maximum = 10.0)]
    pub seconds: f64,
    /// Width in pixels, 64–640; the height follows the video's shape.
    #[schema(minimum = 64, maximum = 640)]
    pub width: u32,
}

impl Default for PreviewSpec {
    fn default() -> Self {
        Self {
            format: PreviewFormat::Gif,
            seconds: 3.0,
            width: 320,
        }
    }
}

/// The animated preview's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PreviewFormat {
    /// Animated GIF (256 colours per frame, plays everywhere).
    Gif,
    /// Animated WebP (full colour, smaller).
    Webp,
}

impl PreviewFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TransitionSpec {
    pub kind: TransitionKind,
    /// Length of the transition in seconds, centred on the cut: 0 up to `seconds_per_image` (or
    /// the shortest of `durations`); ignored with `kind: none`. (No bounds in the schema: they
    /// depend on the other fields.)
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

/// How one photo gives way to the next. Directions name where the incoming photo moves:
/// `slide-left` pushes the old photo out to the left, `wipe-left` reveals the new one with an
/// edge moving leftwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransitionKind {
    /// The photos blend.
    Crossfade,
    /// The old photo fades to black, then the new one fades in from black.
    FadeBlack,
    /// The same through white.
    FadeWhite,
    SlideLeft,
    SlideRight,
    SlideUp,
    SlideDown,
    WipeLeft,
    WipeRight,
    WipeUp,
    WipeDown,
    /// The old photo zooms in as the new one blends in from zoomed-in.
    Zoom,
    /// Hard cuts.
    None,
    /// A different one of the above (never `none`) at each cut, the same on every render of the
    /// same options.
    Random,
}

impl TransitionKind {
    /// Every transition that shows something (what `random` picks from).
    pub const VISIBLE: [Self; 12] = [
        Self::Crossfade,
        Self::FadeBlack,
        Self::FadeWhite,
        Self::SlideLeft,
        Self::SlideRight,
        Self::SlideUp,
        Self::SlideDown,
        Self::WipeLeft,
        Self::WipeRight,
        Self::WipeUp,
        Self::WipeDown,
        Self::Zoom,
    ];

    /// The transition at cut `cut` (1 = between the first and the second photo); any kind but
    /// `random` is itself. `random` deals the twelve visible kinds in rounds, each round a
    /// shuffle seeded by its number, so every kind shows up, none twice in a row, and the same
    /// cut always gets the same kind.
    pub fn at_cut(self, cut: usize) -> Self {
        if self != Self::Random {
            return self;
        }
        let n = Self::VISIBLE.len();
        let (round, at) = (cut.saturating_sub(1) / n, cut.saturating_sub(1) % n);
        let mut deal = shuffled(round as u64);
        // A round starting with the kind the previous one ended on starts with its second.
        if round > 0 && shuffled(round as u64 - 1)[n - 1] == deal[0] {
            deal.swap(0, 1);
        }
        deal[at]
    }
}

/// The visible transitions in an order that is a pure function of `seed` (Fisher–Yates over
/// splitmix64: the same on every platform and release).
fn shuffled(seed: u64) -> [TransitionKind; 12] {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut deal = TransitionKind::VISIBLE;
    for i in (1..deal.len()).rev() {
        deal.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    deal
}

/// Camera motion over each photo. Directions name where the picture moves: `pan-left` moves it
/// leftwards (the camera travels right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Motion {
    /// A slow sub-pixel zoom and pan, in and out by turns, in a different direction per photo;
    /// with `fit: cover`, a photo of another shape than the video also travels along its long
    /// side (top to bottom, then back, for portrait photos in a landscape video).
    #[serde(rename = "kenburns")]
    KenBurns,
    /// A slow zoom into the centre.
    ZoomIn,
    /// A slow zoom out from the centre.
    ZoomOut,
    PanLeft,
    PanRight,
    None,
}

impl Motion {
    /// Every motion, for documentation and tests.
    pub const ALL: [Self; 6] = [
        Self::KenBurns,
        Self::ZoomIn,
        Self::ZoomOut,
        Self::PanLeft,
        Self::PanRight,
        Self::None,
    ];
}

/// The order of the photos in the video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// As uploaded.
    Upload,
    /// By file name, numbers by value and letters regardless of case (`img_2` before `IMG_10`);
    /// photos without a name last.
    Filename,
    /// By the time the photo was taken (EXIF `DateTimeOriginal`); photos without one last, in
    /// upload order.
    Taken,
}

/// Size presets: the short side of the video in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Resolution {
    #[serde(rename = "480p")]
    P480,
    #[serde(rename = "720p")]
    P720,
    #[serde(rename = "1080p")]
    P1080,
    #[serde(rename = "1440p")]
    P1440,
    #[serde(rename = "2160p")]
    P2160,
}

/// Width to height of a `resolution` preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Aspect {
    #[serde(rename = "16:9")]
    Wide,
    #[serde(rename = "9:16")]
    Tall,
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "4:5")]
    Portrait,
    #[serde(rename = "4:3")]
    Classic,
}

impl Resolution {
    /// The short side, in pixels.
    pub fn short_side(self) -> u32 {
        match self {
            Self::P480 => 480,
            Self::P720 => 720,
            Self::P1080 => 1080,
            Self::P1440 => 1440,
            Self::P2160 => 2160,
        }
    }

    /// Width and height at `aspect`: the short side exactly, the long one rounded to an even
    /// number (480p at 16:9 is 854 × 480, 1080p at 4:5 is 1080 × 1350).
    pub fn size(self, aspect: Aspect) -> (u32, u32) {
        let short = self.short_side();
        let (w, h) = aspect.ratio();
        let long = |a: u32, b: u32| {
            let exact = f64::from(short) * f64::from(a) / f64::from(b);
            ((exact / 2.0).round() * 2.0) as u32
        };
        if w >= h {
            (long(w, h), short)
        } else {
            (short, long(h, w))
        }
    }
}

impl Aspect {
    /// Width : height.
    pub fn ratio(self) -> (u32, u32) {
        match self {
            Self::Wide => (16, 9),
            Self::Tall => (9, 16),
            Self::Square => (1, 1),
            Self::Portrait => (4, 5),
            Self::Classic => (4, 3),
        }
    }
}

/// How hard the encoder works: speed against file size at a similar look. `standard` is the
/// worker's configured settings: for MP4 the x264 preset and CRF (default `veryfast`, 23), for
/// WebM VP9's speed and CRF (default 7, 33). `draft` is two x264 presets faster at CRF + 5
/// (`ultrafast`, 28; VP9 speed + 1 at CRF + 5), `high` two presets slower at CRF − 4 (`fast`, 19;
/// VP9 speed − 2 at CRF − 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Draft,
    Standard,
    High,
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
    /// Seconds photo `i` is on screen.
    pub fn seconds_of(&self, i: usize) -> f64 {
        self.durations
            .as_ref()
            .and_then(|d| d.get(i))
            .copied()
            .unwrap_or(self.seconds_per_image)
    }

    /// When photo `i` starts, in seconds: the sum of the photos before it (`start_of(n)` is the
    /// length of a video of `n` photos). Evaluated as `i × seconds_per_image` without
    /// `durations`, so every caller rounds the same number to frames.
    pub fn start_of(&self, i: usize) -> f64 {
        match &self.durations {
            None => i as f64 * self.seconds_per_image,
            Some(_) => (0..i).map(|j| self.seconds_of(j)).sum(),
        }
    }

    /// The photos re-ordered: `order[k]` is the upload index of the `k`-th photo of the video.
    /// `durations` move with their photos.
    pub fn reordered(mut self, order: &[usize]) -> Self {
        if let Some(d) = &self.durations
            && d.len() == order.len()
        {
            self.durations = Some(order.iter().map(|&i| d[i]).collect());
        }
        self
    }

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
            ("preview", value.get("preview").filter(|v| !v.is_null())),
        ] {
            if let Some(v) = v.filter(|v| !v.is_object()) {
                return Err(Violation {
                    field: field.into(),
                    message: format!("must be a JSON object, got {}", json_kind(v)),
                });
            }
        }
        // Through serde_path_to_error, so a value of the wrong type is named by its path
        // (`transition.seconds`), not only as "options".
        let mut spec: Self = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let path = e.path().to_string();
            let field = if path.is_empty() || path == "." {
                "options".to_owned()
            } else {
                path
            };
            Violation {
                field,
                message: e.into_inner().to_string(),
            }
        })?;
        if spec.transition.kind == TransitionKind::None {
            spec.transition.seconds = 0.0;
        }
        if spec.resolution.is_some() || spec.aspect.is_some() {
            let resolution = spec.resolution.unwrap_or(Resolution::P720);
            let size = resolution.size(spec.aspect.unwrap_or(Aspect::Wide));
            // The effective options echo both: sent back as stored, they are accepted.
            let differs = |(f, v): &(&str, u32)| {
                value
                    .get(f)
                    .is_some_and(|g| g.as_u64() != Some(u64::from(*v)))
            };
            if let Some((side, _)) = [("width", size.0), ("height", size.1)]
                .into_iter()
                .find(differs)
            {
                return Err(Violation {
                    field: "resolution".into(),
                    message: format!(
                        "give either `resolution` (with `aspect`) or `width` and `height`, not \
                         both (`{side}` was given too, and is not the preset's)"
                    ),
                });
            }
            (spec.width, spec.height) = size;
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
        if !(MIN_FPS..=MAX_FPS).contains(&self.fps) {
            bad(
                "fps",
                format!("must be from {MIN_FPS} to {MAX_FPS}, got {}", self.fps),
            );
        }
        let strength = self.motion_strength;
        if !(0.0..=MAX_MOTION_STRENGTH).contains(&strength) {
            bad(
                "motion_strength",
                format!("must be from 0 to {MAX_MOTION_STRENGTH}, got {strength}"),
            );
        }
        let fps = self.fps;
        let mut check_seconds = |field: &str, spi: f64| {
            if !spi.is_finite() || spi <= 0.0 || spi > MAX_SECONDS_PER_IMAGE {
                bad(
                    field,
                    format!("must be more than 0 and at most {MAX_SECONDS_PER_IMAGE}, got {spi}"),
                );
            } else if spi * f64::from(fps.max(1)) < 1.0 {
                bad(
                    field,
                    format!("{spi} s at {fps} fps is less than one frame per photo"),
                );
            }
        };
        check_seconds("seconds_per_image", self.seconds_per_image);
        // The time field a length problem is reported on.
        let length_field = if self.durations.is_some() {
            "durations"
        } else {
            "seconds_per_image"
        };
        let mut shortest = self.seconds_per_image;
        if let Some(d) = &self.durations {
            for (i, &seconds) in d.iter().enumerate() {
                check_seconds(&format!("durations[{i}]"), seconds);
            }
            shortest = d.iter().copied().fold(f64::INFINITY, f64::min);
            if d.len() != image_count as usize {
                bad(
                    "durations",
                    format!(
                        "has {} values for {image_count} photos: give one per photo, in upload order",
                        d.len()
                    ),
                );
            }
        }
        let ts = self.transition.seconds;
        if self.transition.kind != TransitionKind::None
            && (!ts.is_finite() || ts < 0.0 || ts > shortest)
        {
            let of = if self.durations.is_some() {
                "the shortest of durations"
            } else {
                "seconds_per_image"
            };
            bad(
                "transition.seconds",
                format!("must be from 0 to {of} ({shortest}), got {ts}"),
            );
        }
        if self.thumbnails.len() > MAX_THUMBNAILS {
            bad(
                "thumbnails",
                format!(
                    "has {} sizes, more than the limit of {MAX_THUMBNAILS}",
                    self.thumbnails.len()
                ),
            );
        }
        for (i, &size) in self.thumbnails.iter().enumerate() {
            if !(MIN_THUMBNAIL..=MAX_THUMBNAIL).contains(&size) {
                bad(
                    &format!("thumbnails[{i}]"),
                    format!("must be from {MIN_THUMBNAIL} to {MAX_THUMBNAIL} pixels, got {size}"),
                );
            } else if self.thumbnails[..i].contains(&size) {
                bad(
                    &format!("thumbnails[{i}]"),
                    format!("{size} is listed twice"),
                );
            }
        }
        if let Some(p) = &self.preview {
            if !p.seconds.is_finite() || p.seconds <= 0.0 || p.seconds > MAX_PREVIEW_SECONDS {
                bad(
                    "preview.seconds",
                    format!(
                        "must be more than 0 and at most {MAX_PREVIEW_SECONDS}, got {}",
                        p.seconds
                    ),
                );
            } else if p.seconds * f64::from(PREVIEW_FPS) < 1.0 {
                bad(
                    "preview.seconds",
                    format!(
                        "{} s at the preview's {PREVIEW_FPS} fps is less than one frame",
                        p.seconds
                    ),
                );
            }
            if !(MIN_PREVIEW_WIDTH..=MAX_PREVIEW_WIDTH).contains(&p.width) {
                bad(
                    "preview.width",
                    format!(
                        "must be from {MIN_PREVIEW_WIDTH} to {MAX_PREVIEW_WIDTH} pixels, got {}",
                        p.width
                    ),
                );
            }
        }
        let fade = self.audio_fade_seconds;
        if !(0.0..=MAX_AUDIO_FADE_SECONDS).contains(&fade) {
            bad(
                "audio_fade_seconds",
                format!("must be from 0 to {MAX_AUDIO_FADE_SECONDS}, got {fade}"),
            );
        }
        // Its form and destination are the API's to check (against the server's address policy).
        if let Some(url) = &self.callback_url
            && url.chars().count() > MAX_CALLBACK_URL_CHARS
        {
            bad(
                "callback_url",
                format!(
                    "is {} characters, more than the limit of {MAX_CALLBACK_URL_CHARS}",
                    url.chars().count()
                ),
            );
        }
        let total = self.start_of(image_count as usize);
        let spi = self.seconds_per_image;
        if total > limits.max_video_seconds {
            let sum = if self.durations.is_some() {
                format!("the durations add up to {total} s, which")
            } else {
                format!("{image_count} photos × {spi} s = {total} s")
            };
            bad(
                length_field,
                format!(
                    "{sum} is longer than the limit of {} s",
                    limits.max_video_seconds
                ),
            );
        } else if total.is_finite() {
            let frames = (total * f64::from(self.fps)).ceil() as u64;
            let work = Limits::megapixel_frames(self.width, self.height, frames);
            if work > limits.max_megapixel_frames as f64 {
                bad(
                    length_field,
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
        assert_eq!(e.field, "background");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_path() {
        for (json, field) in [
            (&br#"{"fps": "fast"}"#[..], "fps"),
            (
                br#"{"transition": {"seconds": "long"}}"#,
                "transition.seconds",
            ),
            (br#"{"preview": {"width": -3}}"#, "preview.width"),
            (br#"{"thumbnails": [100, "big"]}"#, "thumbnails[1]"),
        ] {
            let e = RenderSpec::from_json(json).expect_err("wrong type");
            assert_eq!(e.field, field, "{}", e.message);
            assert!(
                !e.message.contains("line"),
                "no line and column: {}",
                e.message
            );
        }
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

    #[test]
    fn a_resolution_preset_sets_the_size_at_its_aspect() {
        for (json, size) in [
            (r#"{"resolution": "1080p"}"#, (1920, 1080)),
            (r#"{"resolution": "480p"}"#, (854, 480)),
            (r#"{"resolution": "2160p", "aspect": "16:9"}"#, (3840, 2160)),
            (r#"{"resolution": "1080p", "aspect": "9:16"}"#, (1080, 1920)),
            (r#"{"resolution": "1080p", "aspect": "4:5"}"#, (1080, 1350)),
            (r#"{"resolution": "720p", "aspect": "1:1"}"#, (720, 720)),
            (r#"{"resolution": "1440p", "aspect": "4:3"}"#, (1920, 1440)),
            (r#"{"aspect": "9:16"}"#, (720, 1280)),
        ] {
            let spec = RenderSpec::from_json(json.as_bytes()).expect(json);
            assert_eq!((spec.width, spec.height), size, "{json}");
            assert!(fields(&spec).is_empty(), "{json}: {:?}", fields(&spec));
        }
        // Every preset at every aspect is a valid canvas.
        for r in [
            Resolution::P480,
            Resolution::P720,
            Resolution::P1080,
            Resolution::P1440,
            Resolution::P2160,
        ] {
            for a in [
                Aspect::Wide,
                Aspect::Tall,
                Aspect::Square,
                Aspect::Portrait,
                Aspect::Classic,
            ] {
                let (width, height) = r.size(a);
                let spec = RenderSpec {
                    width,
                    height,
                    ..RenderSpec::default()
                };
                assert!(
                    spec.validate(1, &Limits::default()).is_empty(),
                    "{r:?} {a:?}"
                );
            }
        }
        // The effective options say what was asked for.
        let spec = RenderSpec::from_json(br#"{"resolution": "1080p"}"#).expect("valid");
        let echoed = serde_json::to_value(&spec).expect("json");
        assert_eq!(echoed["resolution"], "1080p");
        assert_eq!(echoed["width"], 1920);
        assert!(echoed.get("aspect").is_none());
        // Sent back as stored, they give the same spec.
        let again = RenderSpec::from_json(echoed.to_string().as_bytes()).expect("echo accepted");
        assert_eq!(again, spec);
    }

    #[test]
    fn a_preset_and_an_explicit_size_together_are_refused() {
        let e =
            RenderSpec::from_json(br#"{"resolution": "720p", "width": 640}"#).expect_err("both");
        assert_eq!(e.field, "resolution");
        assert!(e.message.contains("width"), "{}", e.message);
        let e = RenderSpec::from_json(br#"{"resolution": "600p"}"#).expect_err("no such preset");
        assert!(
            e.message.contains("600p") && e.message.contains("1080p"),
            "{}",
            e.message
        );
        let e = RenderSpec::from_json(br#"{"aspect": "21:9"}"#).expect_err("no such aspect");
        assert!(
            e.message.contains("21:9") && e.message.contains("4:5"),
            "{}",
            e.message
        );
    }

    #[test]
    fn frame_rate_and_motion_strength_have_ranges() {
        for (fps, ok) in [(11, false), (12, true), (60, true), (61, false)] {
            let spec = RenderSpec {
                fps,
                ..RenderSpec::default()
            };
            assert_eq!(fields(&spec).is_empty(), ok, "{fps}");
        }
        for (strength, ok) in [(-0.1, false), (0.0, true), (2.0, true), (2.01, false)] {
            let spec = RenderSpec {
                motion_strength: strength,
                ..RenderSpec::default()
            };
            assert_eq!(
                fields(&spec),
                if ok {
                    vec![]
                } else {
                    vec!["motion_strength".to_owned()]
                }
            );
        }
    }

    #[test]
    fn every_option_name_reads_and_echoes_as_documented() {
        let json =
            br#"{"transition": {"kind": "slide-left"}, "motion": "zoom-in", "quality": "high"}"#;
        let spec = RenderSpec::from_json(json).expect("valid");
        assert_eq!(spec.transition.kind, TransitionKind::SlideLeft);
        assert_eq!(spec.motion, Motion::ZoomIn);
        assert_eq!(spec.quality, Quality::High);
        let echoed = serde_json::to_value(&spec).expect("json");
        assert_eq!(echoed["transition"]["kind"], "slide-left");
        assert_eq!(echoed["motion"], "zoom-in");
        assert_eq!(echoed["quality"], "high");
        for kind in [
            "fade-black",
            "fade-white",
            "wipe-up",
            "zoom",
            "random",
            "none",
        ] {
            let json = format!(r#"{{"transition": {{"kind": "{kind}"}}}}"#);
            RenderSpec::from_json(json.as_bytes()).expect(&json);
        }
        for motion in ["kenburns", "zoom-out", "pan-left", "pan-right", "none"] {
            let json = format!(r#"{{"motion": "{motion}"}}"#);
            RenderSpec::from_json(json.as_bytes()).expect(&json);
        }
    }

    #[test]
    fn random_transitions_vary_are_visible_and_repeat_per_cut() {
        let picks: Vec<TransitionKind> =
            (1..=60).map(|c| TransitionKind::Random.at_cut(c)).collect();
        assert!(picks.iter().all(|k| TransitionKind::VISIBLE.contains(k)));
        assert!(picks.windows(2).all(|w| w[0] != w[1]), "{picks:?}");
        let distinct = TransitionKind::VISIBLE
            .iter()
            .filter(|k| picks.contains(k))
            .count();
        assert_eq!(distinct, 12, "{picks:?}");
        let again: Vec<TransitionKind> =
            (1..=60).map(|c| TransitionKind::Random.at_cut(c)).collect();
        assert_eq!(picks, again);
        assert_eq!(TransitionKind::Zoom.at_cut(7), TransitionKind::Zoom);
    }

    #[test]
    fn durations_replace_seconds_per_image_one_per_photo() {
        let spec = RenderSpec::from_json(
            br#"{"durations": [1.0, 2.5, 0.5], "transition": {"seconds": 0.4}}"#,
        )
        .expect("valid");
        assert!(fields(&spec).is_empty(), "{:?}", fields(&spec));
        let starts: Vec<f64> = (0..=3).map(|i| spec.start_of(i)).collect();
        assert_eq!(starts, [0.0, 1.0, 3.5, 4.0]);
        assert_eq!(spec.seconds_of(1), 2.5);
        // One per photo: a count that does not match names both numbers.
        let v = spec.validate(4, &Limits::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].field, "durations");
        assert!(
            v[0].message.contains("3 values for 4 photos"),
            "{}",
            v[0].message
        );
        // A bad value is named by its index; a transition longer than the shortest photo too.
        let bad = RenderSpec::from_json(br#"{"durations": [1.0, 0, 2.0]}"#).expect("parses");
        assert_eq!(fields(&bad), ["durations[1]", "transition.seconds"]);
        let bad = RenderSpec::from_json(br#"{"durations": [1.0, 0.3, 2.0]}"#).expect("parses");
        let v = bad.validate(3, &Limits::default());
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("shortest"), "{}", v[0].message);
        // The length limit counts their sum.
        let long = RenderSpec::from_json(br#"{"durations": [60, 60, 1]}"#).expect("parses");
        let limits = Limits {
            max_video_seconds: 120.0,
            ..Limits::default()
        };
        let v = long.validate(3, &limits);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].field, "durations");
        assert!(v[0].message.contains("121"), "{}", v[0].message);
    }

    #[test]
    fn durations_move_with_their_photos() {
        let spec = RenderSpec {
            durations: Some(vec![1.0, 2.5, 0.5]),
            ..RenderSpec::default()
        };
        // The video shows upload 2, then 0, then 1.
        let sorted = spec.reordered(&[2, 0, 1]);
        assert_eq!(sorted.durations, Some(vec![0.5, 1.0, 2.5]));
        assert_eq!(
            RenderSpec::default().reordered(&[1, 0]),
            RenderSpec::default()
        );
    }

    #[test]
    fn format_thumbnails_and_preview_read_with_defaults_and_echo() {
        let spec = RenderSpec::default();
        assert_eq!(spec.format, Format::Mp4);
        assert_eq!(spec.thumbnails, [100, 300, 600]);
        assert_eq!(spec.preview, None);
        let echoed = serde_json::to_value(&spec).expect("json");
        assert_eq!(echoed["format"], "mp4");
        assert!(echoed.get("preview").is_none(), "{echoed}");

        let json = br#"{"format": "webm", "thumbnails": [], "preview": {"format": "webp"}}"#;
        let spec = RenderSpec::from_json(json).expect("valid");
        assert_eq!(spec.format, Format::Webm);
        assert!(spec.thumbnails.is_empty());
        let preview = spec.preview.clone().expect("a preview");
        assert_eq!(preview.format, PreviewFormat::Webp);
        assert_eq!((preview.seconds, preview.width), (3.0, 320));
        assert!(fields(&spec).is_empty());
        // Echoed options are accepted back as they are.
        let echoed = serde_json::to_vec(&spec).expect("json");
        assert_eq!(RenderSpec::from_json(&echoed).expect("echo"), spec);
        // null is no preview; anything else but an object is named.
        let spec = RenderSpec::from_json(br#"{"preview": null}"#).expect("null");
        assert_eq!(spec.preview, None);
        let e = RenderSpec::from_json(br#"{"preview": "gif"}"#).expect_err("string");
        assert_eq!(e.field, "preview");
        assert!(e.message.contains("a string"), "{}", e.message);
        for bad in [r#"{"format": "avi"}"#, r#"{"preview": {"format": "apng"}}"#] {
            let e = RenderSpec::from_json(bad.as_bytes()).expect_err(bad);
            assert!(
                e.message.contains("unknown variant"),
                "{bad}: {}",
                e.message
            );
        }
    }

    #[test]
    fn thumbnail_sizes_and_the_preview_have_limits() {
        let spec = RenderSpec {
            thumbnails: vec![100, 8, 100, 5000],
            preview: Some(PreviewSpec {
                seconds: 0.05,
                width: 1000,
                ..PreviewSpec::default()
            }),
            ..RenderSpec::default()
        };
        let v = spec.validate(3, &Limits::default());
        let named: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.field.as_str(), v.message.as_str()))
            .collect();
        assert_eq!(
            named.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            [
                "thumbnails[1]",
                "thumbnails[2]",
                "thumbnails[3]",
                "preview.seconds",
                "preview.width"
            ],
            "{named:?}"
        );
        assert!(named[0].1.contains("16 to 2048") && named[0].1.contains("got 8"));
        assert!(named[1].1.contains("twice"), "{}", named[1].1);
        assert!(named[3].1.contains("less than one frame"), "{}", named[3].1);
        assert!(named[4].1.contains("64 to 640"), "{}", named[4].1);
        for fade in [-0.5, 10.5, f64::NAN] {
            let spec = RenderSpec {
                audio_fade_seconds: fade,
                ..RenderSpec::default()
            };
            assert_eq!(fields(&spec), ["audio_fade_seconds"], "{fade}");
        }
        let many = RenderSpec {
            thumbnails: (1..=9).map(|i| i * 100).collect(),
            ..RenderSpec::default()
        };
        assert_eq!(fields(&many), ["thumbnails"]);
        for seconds in [0.0, -1.0, 10.5, f64::NAN] {
            let spec = RenderSpec {
                preview: Some(PreviewSpec {
                    seconds,
                    ..PreviewSpec::default()
                }),
                ..RenderSpec::default()
            };
            assert_eq!(fields(&spec), ["preview.seconds"], "{seconds}");
        }
    }
}
