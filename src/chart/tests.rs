use super::*;
use image::RgbImage;

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() <= tol)
}

/// Pixels of `img` within `tol` of colour `c`.
fn pixels_of(img: &RgbImage, c: [u8; 3], tol: i32) -> Vec<(u32, u32)> {
    img.enumerate_pixels()
        .filter(|(_, _, p)| close(p.0, c, tol))
        .map(|(x, y, _)| (x, y))
        .collect()
}

/// The numbers in an SVG attribute list, by name, of every element named `tag`.
fn elements(svg: &str, tag: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut out = Vec::new();
    let open = format!("<{tag} ");
    let mut rest = svg;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let end = after.find('>').unwrap();
        let mut attrs = std::collections::HashMap::new();
        for part in after[..end].split("\" ") {
            if let Some((k, v)) = part.split_once("=\"") {
                attrs.insert(
                    k.trim().to_string(),
                    v.trim_end_matches(['"', '/']).to_string(),
                );
            }
        }
        out.push(attrs);
        rest = &after[end..];
    }
    out
}

#[test]
fn ticks_are_round_and_cover_the_range() {
    assert_eq!(nice_ticks(-3.0, 47.0), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
    let t = nice_ticks(0.5, 1.0);
    assert_eq!(t.first().copied(), Some(0.5));
    assert!((t.last().unwrap() - 1.0).abs() < 1e-9, "{t:?}");
    let labels: Vec<String> = nice_ticks(0.0, 1.0)
        .iter()
        .map(|v| number(*v, 0.2))
        .collect();
    assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    assert_eq!(number(0.25, 0.25), "0.25");
    assert_eq!(number(-3.0, 1.0), "\u{2212}3");
    assert_eq!(number(1.0000000002, 0.5), "1.0");
}

#[test]
fn line_points_land_where_the_data_says() {
    // y = x on a chart whose range is fixed: the marker of (x, y) sits on the line from the
    // lowest to the highest corner of the plot, at the fraction x of the way
    let red = [213, 94, 0];
    let fig = LineChart::new(
        "Known line",
        Axis::linear("x (units)").range(0.0, 10.0),
        Axis::linear("y (units)").range(0.0, 10.0),
    )
    .line(Line::new("", &[(0.0, 0.0), (5.0, 5.0), (10.0, 10.0)]).colour(red))
    .render()
    .unwrap();
    let circles = elements(&fig.inline_svg(), "circle");
    let centres: Vec<(f64, f64)> = circles
        .iter()
        .map(|a| (a["cx"].parse().unwrap(), a["cy"].parse().unwrap()))
        .collect();
    assert_eq!(centres.len(), 3, "{circles:?}");
    let (a, m, b) = (centres[0], centres[1], centres[2]);
    assert!(b.0 > a.0 + 300.0 && b.1 < a.1 - 200.0, "{centres:?}");
    assert!((m.0 - (a.0 + b.0) / 2.0).abs() <= 1.0, "{centres:?}");
    assert!((m.1 - (a.1 + b.1) / 2.0).abs() <= 1.0, "{centres:?}");
    // and the PNG has the line's colour at the middle marker, at twice the coordinates
    let png = fig.png().unwrap();
    assert_eq!(png.dimensions(), (2 * WIDTH, 2 * HEIGHT));
    let p = png.get_pixel((2.0 * m.0) as u32, (2.0 * m.1) as u32).0;
    assert!(close(p, red, 12), "{p:?}");
    // nothing of that colour left of the plot area, where the y labels are
    let stray = pixels_of(&png, red, 12)
        .into_iter()
        .filter(|(x, _)| (*x as f64) < 2.0 * a.0 - 10.0)
        .count();
    assert_eq!(stray, 0);
}

#[test]
fn intervals_are_shaded_between_their_ends() {
    let blue = PALETTE[0];
    let fig = LineChart::new(
        "Interval",
        Axis::linear("k").range(0.0, 2.0),
        Axis::linear("v").range(0.0, 10.0),
    )
    .line(Line::new("mean", &[(0.0, 5.0), (2.0, 5.0)]).interval(
        &[2.0, 2.0],
        &[8.0, 8.0],
        "99% interval",
    ))
    .render()
    .unwrap();
    let png = fig.png().unwrap();
    // down the middle column of the plot: the band (20% of the line colour over white) runs
    // from y = 8 to y = 2, and the line (y = 5) sits halfway
    let band: [u8; 3] = std::array::from_fn(|k| (255.0 * 0.8 + blue[k] as f64 * 0.2).round() as u8);
    let x = png.width() / 2;
    let column = |c: [u8; 3], tol: i32| -> Vec<f64> {
        (0..png.height())
            .filter(|&y| close(png.get_pixel(x, y).0, c, tol))
            .map(f64::from)
            .collect()
    };
    let shaded = column(band, 6);
    let line = column(blue, 10);
    assert!(
        shaded.len() > 300 && !line.is_empty(),
        "{} {}",
        shaded.len(),
        line.len()
    );
    let (top, bottom) = (shaded[0], *shaded.last().unwrap());
    let mid = line.iter().sum::<f64>() / line.len() as f64;
    assert!(
        ((top + bottom) / 2.0 - mid).abs() < 3.0,
        "{top} {bottom} {mid}"
    );
    assert!(fig.text().iter().any(|t| t == "99% interval"));
}

#[test]
fn mismatched_intervals_are_refused() {
    let err = LineChart::new("t", Axis::linear("x"), Axis::linear("y"))
        .line(Line::new("a", &[(0.0, 1.0), (1.0, 2.0)]).interval(&[0.0], &[1.0, 2.0], ""))
        .render()
        .unwrap_err();
    assert!(err.to_string().contains("one of each per point"), "{err}");
}

#[test]
fn negative_bars_go_below_the_axis() {
    let fig = BarChart::new("Signs", "sign", Axis::linear("value (px)"))
        .bar(Bar::new("up", 2.0))
        .bar(Bar::new("down", -1.0))
        .render()
        .unwrap();
    let hex = format!(
        "#{:02X}{:02X}{:02X}",
        PALETTE[0][0], PALETTE[0][1], PALETTE[0][2]
    );
    let bars: Vec<(f64, f64, f64, f64)> = elements(&fig.inline_svg(), "rect")
        .into_iter()
        .filter(|a| a.get("fill").is_some_and(|f| f.eq_ignore_ascii_case(&hex)))
        .map(|a| {
            let n = |k: &str| a[k].parse::<f64>().unwrap();
            (n("x"), n("y"), n("width"), n("height"))
        })
        .collect();
    assert_eq!(bars.len(), 2, "{bars:?}");
    let (up, down) = (bars[0], bars[1]);
    // both start at the zero line, one going up and the other down, half as far
    let zero = up.1 + up.3;
    assert!((down.1 - zero).abs() <= 1.0, "{up:?} {down:?}");
    assert!((up.3 / down.3 - 2.0).abs() < 0.05, "{up:?} {down:?}");
    assert!(down.0 > up.0 + up.2, "left to right");
    // the PNG agrees: in each bar's columns, its colour lies on its side of the zero line
    let png = fig.png().unwrap();
    let rows_in = |b: (f64, f64, f64, f64)| -> Vec<f64> {
        pixels_of(&png, PALETTE[0], 0)
            .into_iter()
            .filter(|(x, _)| (*x as f64) > 2.0 * b.0 && (*x as f64) < 2.0 * (b.0 + b.2))
            .map(|(_, y)| y as f64 / 2.0)
            .collect()
    };
    let (above, below) = (rows_in(up), rows_in(down));
    assert!(
        above.len() > 2000 && below.len() > 1000,
        "{} {}",
        above.len(),
        below.len()
    );
    assert!(above.iter().all(|y| *y <= zero + 0.5));
    assert!(below.iter().all(|y| *y >= zero - 0.5));
}

#[test]
fn heat_map_cells_take_the_colour_of_their_value() {
    let rows: Vec<String> = (0..3).map(|i| format!("row {i}")).collect();
    let cols: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
    let values: Vec<Vec<f64>> = (0..3)
        .map(|r| (0..4).map(|c| (r * 4 + c) as f64 / 11.0).collect())
        .collect();
    let map =
        HeatMap::new("Known matrix", &rows, &cols, values.clone()).labels("value", "row", "column");
    let fig = map.render().unwrap();
    let png = fig.png().unwrap();
    let l = map.layout();
    for (r, row) in values.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let x = 2 * (l.grid.0 + c as i32 * l.cell + l.cell / 2);
            let y = 2 * (l.grid.1 + r as i32 * l.cell + l.cell / 2);
            let got = png.get_pixel(x as u32, y as u32).0;
            let want = ColourScale::Sequential.at(*v);
            assert!(close(got, want, 2), "cell {r},{c}: {got:?} vs {want:?}");
        }
    }
    // the ends of the scale: the darkest cell is viridis' purple, the brightest its yellow
    assert!(close(ColourScale::Sequential.at(0.0), [68, 1, 84], 0));
    assert!(close(ColourScale::Sequential.at(1.0), [254, 232, 37], 0));
    // a diverging map is white at zero and symmetric
    assert_eq!(ColourScale::Diverging.at(0.5), [247, 247, 247]);
    assert_eq!(ColourScale::Diverging.range(-0.2, 0.8), (-0.8, 0.8));
}

#[test]
fn dendrograms_order_leaves_and_refuse_bad_trees() {
    // ((0, 2), (1, 3)) joined last
    let tree = Dendrogram::new(
        4,
        vec![
            Merge {
                a: 0,
                b: 2,
                height: 0.1,
            },
            Merge {
                a: 1,
                b: 3,
                height: 0.3,
            },
            Merge {
                a: 4,
                b: 5,
                height: 0.9,
            },
        ],
    )
    .unwrap();
    assert_eq!(tree.leaf_order(), [0, 2, 1, 3]);
    let err = Dendrogram::new(
        3,
        vec![
            Merge {
                a: 0,
                b: 3,
                height: 1.0,
            },
            Merge {
                a: 1,
                b: 2,
                height: 1.0,
            },
        ],
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not exist yet"), "{err}");
    let err = Dendrogram::new(
        3,
        vec![
            Merge {
                a: 0,
                b: 1,
                height: 1.0,
            },
            Merge {
                a: 0,
                b: 3,
                height: 2.0,
            },
        ],
    )
    .unwrap_err();
    assert!(err.to_string().contains("already joined"), "{err}");
    // a heat map ordered by it puts the rows in leaf order
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let values = vec![vec![0.0], vec![1.0], vec![2.0], vec![3.0]];
    let map = HeatMap::new("Ordered", &names, &names[..1], values).row_tree(tree.clone());
    let fig = map.render().unwrap();
    let text = fig.text();
    let pos = |s: &str| text.iter().position(|t| t == s).unwrap();
    assert!(
        pos("a") < pos("c") && pos("c") < pos("b") && pos("b") < pos("d"),
        "{text:?}"
    );
    let l = map.layout();
    let png = fig.png().unwrap();
    let cell_colour = |slot: i32| {
        let x = 2 * (l.grid.0 + l.cell / 2);
        let y = 2 * (l.grid.1 + slot * l.cell + l.cell / 2);
        png.get_pixel(x as u32, y as u32).0
    };
    // the second row drawn is leaf 2 ("c", value 2 of 0..3)
    assert!(close(
        cell_colour(1),
        ColourScale::Sequential.at(2.0 / 3.0),
        2
    ));
    let chart = DendrogramChart::new("Tree", tree, &names, "distance")
        .render()
        .unwrap();
    assert!(chart.text().iter().any(|t| t == "distance"));
}

#[test]
fn svg_text_is_present_and_set_in_the_embedded_font() {
    let fig = Scatter::new(
        "Selectivity against importance",
        Axis::linear("selectivity index"),
        Axis::linear("accuracy drop"),
    )
    .points([Point::new(0.1, 0.2), Point::new(0.8, 0.5).label("unit 12")])
    .note("Spearman ρ = 0.41")
    .render()
    .unwrap();
    let text = fig.text();
    for want in [
        "Selectivity against importance",
        "selectivity index",
        "accuracy drop",
        "unit 12",
        "Spearman ρ = 0.41",
    ] {
        assert!(
            text.iter().any(|t| t == want),
            "{want} missing from {text:?}"
        );
    }
    let svg = fig.svg().unwrap();
    assert!(svg.contains("font-family=\"DejaVu Sans\""));
    assert!(svg.contains("@font-face{font-family:'DejaVu Sans';src:url(data:font/ttf;base64,"));
    // the embedded subset is small and holds the glyphs used
    let b64 = svg
        .split("base64,")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    assert!(b64.len() < 60_000, "{} bytes of font", b64.len());
    use base64::Engine;
    let subset = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let face = ab_glyph::FontRef::try_from_slice(&subset).unwrap();
    use ab_glyph::Font;
    for c in "Sρ=12".chars() {
        assert_ne!(face.glyph_id(c).0, 0, "{c} missing from the subset");
    }
    assert_eq!(face.glyph_id('Z').0, 0, "Z is not used, so not kept");
}

#[test]
fn no_chart_falls_back_to_a_system_font() {
    // the PNG renderer's font database holds the embedded font and nothing else
    let db = font::database();
    let faces: Vec<_> = db.faces().collect();
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0].families[0].0, font::FAMILY);
    // plotters knows only the registered family: another one is an error, not a fallback
    let fig = BarChart::new("t", "x", Axis::linear("y"))
        .bar(Bar::new("a", 1.0))
        .render()
        .unwrap();
    use plotters::style::{FontFamily, FontStyle};
    assert!(!fig.text().is_empty());
    let missing = plotters::style::FontDesc::new(
        FontFamily::Name("Liberation Sans"),
        12.0,
        FontStyle::Normal,
    );
    assert!(missing.box_size("x").is_err(), "a system font was found");
    // the PNG renderer draws text in the embedded font, and draws nothing for a family it does
    // not hold: had it looked at the system's fonts (this machine may have DejaVu, Liberation),
    // one of them would have stood in
    let ink = |family: &str| {
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"30\">\
             <text x=\"5\" y=\"20\" font-family=\"{family}\" font-size=\"16\">Ink</text></svg>"
        );
        let img = rasterize(&svg, 1.0).unwrap();
        img.pixels().filter(|p| p.0[0] < 100).count()
    };
    assert!(ink(font::FAMILY) > 20);
    assert_eq!(ink("Liberation Sans"), 0);
    assert_eq!(ink("sans-serif"), 0);
    // and nothing in the build links a font finder (fontconfig, font-kit, freetype)
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    for name in [
        "font-kit",
        "fontconfig",
        "freetype",
        "yeslogic-fontconfig-sys",
        "servo-fontconfig",
    ] {
        assert!(
            !lock.contains(&format!("name = \"{name}\"")),
            "{name} is in Cargo.lock"
        );
    }
}

#[test]
fn captions_are_drawn_in_the_embedded_font() {
    let mut img = RgbImage::from_pixel(120, 24, image::Rgb([255, 255, 255]));
    text::draw_text(&mut img, 2, 2, "church 12", 12.0, [0, 0, 0]);
    let dark = img.pixels().filter(|p| p.0[0] < 128).count();
    assert!(dark > 60, "{dark}");
    // anti-aliased: some pixels are neither ink nor paper
    assert!(img.pixels().any(|p| p.0[0] > 40 && p.0[0] < 215));
    // ink stays inside the measured width
    let w = text::width("church 12", 12.0);
    assert!(
        img.enumerate_pixels()
            .all(|(x, _, p)| p.0[0] == 255 || x <= 2 + w + 1)
    );
    // lowercase letters are narrower than capitals (a real font, not a fixed-width bitmap)
    assert!(text::width("iiii", 12.0) < text::width("MMMM", 12.0) / 2);
}

#[test]
fn figures_save_svg_and_png_and_pages_define_the_font_once() {
    let dir = crate::scratch::ScratchDir::new("chart-save").unwrap();
    let a = BarChart::new("Alpha", "x", Axis::linear("y"))
        .bar(Bar::new("qq", 1.0))
        .render()
        .unwrap();
    let b = BarChart::new("Beta", "x", Axis::linear("y"))
        .bar(Bar::new("zz", 2.0))
        .render()
        .unwrap();
    let (svg, png) = a.save(&dir.join("alpha.v2")).unwrap();
    assert_eq!(svg.file_name().unwrap(), "alpha.v2.svg");
    let img = image::open(&png).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (2 * a.size().0, 2 * a.size().1)
    );
    // the file is the standalone SVG, and it draws like the figure
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text, a.svg().unwrap());
    assert_eq!(rasterize(&text, PNG_SCALE).unwrap(), a.png().unwrap());
    // a page of both: one @font-face with the glyphs of both, charts without their own
    let css = page_font_css(&[&a, &b], "").unwrap();
    assert_eq!(css.matches("@font-face").count(), 1);
    assert!(!a.inline_svg().contains("@font-face"));
    let b64 = css
        .split("base64,")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    use base64::Engine;
    let subset = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let face = ab_glyph::FontRef::try_from_slice(&subset).unwrap();
    use ab_glyph::Font;
    for c in "AlphaBetaqz".chars() {
        assert_ne!(face.glyph_id(c).0, 0, "{c} missing from the page's font");
    }
}
