//! The one font of every chart and caption: DejaVu Sans, embedded in the binary
//! (`assets/fonts/`, with its licence). Charts measure their text with it, the PNG renderer
//! draws with it (from a font database that holds nothing else, so no system font can stand in),
//! and SVG files carry a subset of it with just the glyphs they use.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use allsorts::binary::read::ReadScope;
use allsorts::font_data::FontData;
use allsorts::subset::{CmapTarget, SubsetProfile, subset};
use anyhow::{Context, Result, anyhow};
use base64::Engine;
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock, Once};

/// The font file (DejaVu Sans 2.37, as matplotlib ships it).
pub static FONT_DATA: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The font's family name, as charts name it in their SVG.
pub const FAMILY: &str = "DejaVu Sans";

static FONT: LazyLock<FontRef<'static>> = LazyLock::new(|| {
    FontRef::try_from_slice(FONT_DATA).expect("the embedded DejaVu Sans is a valid font")
});

static PLOTTERS: Once = Once::new();

/// Registers the embedded font with plotters under [`FAMILY`] (once per process). Plotters is
/// built without system-font support, so a family it was not given is an error, never a
/// fallback.
pub(crate) fn register() {
    PLOTTERS.call_once(|| {
        if plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, FONT_DATA)
            .is_err()
        {
            panic!("the embedded DejaVu Sans is a valid font");
        }
    });
}

/// A font database holding only the embedded font: the PNG renderer's sole source of glyphs.
pub fn database() -> Arc<resvg::usvg::fontdb::Database> {
    static DB: LazyLock<Arc<resvg::usvg::fontdb::Database>> = LazyLock::new(|| {
        let mut db = resvg::usvg::fontdb::Database::new();
        db.load_font_data(FONT_DATA.to_vec());
        Arc::new(db)
    });
    DB.clone()
}

/// The embedded font for drawing glyphs directly.
pub fn font() -> &'static FontRef<'static> {
    &FONT
}

/// The ab_glyph scale at which one em is `size` pixels (CSS `font-size: size px`).
pub fn scale(size: f32) -> PxScale {
    let per_em = FONT
        .units_per_em()
        .expect("the embedded font has units per em");
    PxScale::from(size * FONT.height_unscaled() / per_em)
}

/// Width in pixels of `text` set at `size` px (advances without kerning, as charts set text).
pub fn text_width(text: &str, size: f32) -> f32 {
    let f = FONT.as_scaled(scale(size));
    text.chars().map(|c| f.h_advance(f.glyph_id(c))).sum()
}

/// Distance from the top of a line to its baseline at `size` px.
pub fn ascent(size: f32) -> f32 {
    FONT.as_scaled(scale(size)).ascent()
}

/// Whether the font has a glyph for `c` (characters without one show as a box).
pub fn covers(c: char) -> bool {
    FONT.glyph_id(c).0 != 0
}

/// The embedded font cut down to the glyphs of `text` (plus the ones every font needs), as a
/// TrueType file a browser accepts.
pub fn subset_for(text: &str) -> Result<Vec<u8>> {
    let mut glyphs: BTreeSet<u16> = text.chars().map(|c| FONT.glyph_id(c).0).collect();
    glyphs.insert(0);
    glyphs.insert(FONT.glyph_id(' ').0);
    let ids: Vec<u16> = glyphs.into_iter().collect();
    let file = ReadScope::new(FONT_DATA)
        .read::<FontData<'_>>()
        .map_err(|e| anyhow!("reading the embedded font: {e}"))?;
    let provider = file
        .table_provider(0)
        .map_err(|e| anyhow!("reading the embedded font: {e}"))?;
    subset(
        &provider,
        &ids,
        &SubsetProfile::Minimal,
        CmapTarget::Unicode,
    )
    .map_err(|e| anyhow!("{e:?}"))
    .context("cutting the embedded font down to a chart's glyphs")
}

/// A CSS `@font-face` rule that defines [`FAMILY`] as the embedded font cut down to the
/// glyphs of `text`, inline as a data URI (it shadows any installed font of that name, so text
/// looks the same on every machine).
pub fn font_face_css(text: &str) -> Result<String> {
    let data = base64::engine::general_purpose::STANDARD.encode(subset_for(text)?);
    Ok(format!(
        "@font-face{{font-family:'{FAMILY}';src:url(data:font/ttf;base64,{data}) format('truetype');}}"
    ))
}
